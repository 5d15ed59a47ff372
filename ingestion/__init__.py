"""Ingestion: Finnhub (websocket and REST) or the market simulator, into Kafka topics."""

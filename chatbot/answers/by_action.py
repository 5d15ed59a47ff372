"""The answer each of the domain's custom actions gives, by action name (chatbot/actions.py wraps
each for Rasa; tests call them straight)."""
from __future__ import annotations

from chatbot.answers import about, anomalies, model_info, news, prices

ANSWERS = {
    "action_anomaly_count": anomalies.count,
    "action_top_anomalous": anomalies.top,
    "action_latest_anomaly": anomalies.latest,
    "action_symbol_status": anomalies.status,
    "action_latest_price": prices.latest,
    "action_symbol_summary": prices.summary,
    "action_top_movers": prices.movers,
    "action_news": news.recent,
    "action_model_info": model_info.describe,
    "action_project": about.project,
    "action_data_sources": about.data_sources,
    "action_dashboard": about.dashboard,
}

"""The Rasa chatbot: training data and config (read by Rasa), custom actions and the chat page."""

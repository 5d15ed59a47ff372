"""The bot (chatbot/): Rasa, its action server, and the chat page Superset's "Chat with the
lakewatch bot" button opens.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chatbot:
    rasa_port: int = 5005
    actions_port: int = 5055
    chat_port: int = 5080
    chatbot_url: str = ""  # the chat page the button opens (default: the stack's own)
    actions_url: str = ""  # where Rasa calls the custom actions (default: the stack's action server)

    @property
    def chat_page_url(self) -> str:
        return self.chatbot_url or self.url(self.chat_port, "/")

    @property
    def actions_webhook_url(self) -> str:
        return self.actions_url or self.peer_url("actions", self.actions_port, "/webhook")

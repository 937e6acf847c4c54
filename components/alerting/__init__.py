"""The alerting tier: who hears the alarms (topics, subscriptions, Chatbot), the NAT gateways' alarms
and the external WebSocket check."""

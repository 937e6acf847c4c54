"""The TURN tier (docs/turn.md): coturn nodes and their configuration."""

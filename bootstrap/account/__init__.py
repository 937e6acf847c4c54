"""The bootstrap project's components (one concern per module)."""

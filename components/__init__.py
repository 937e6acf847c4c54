"""voip-infra components: one ComponentResource per concern."""

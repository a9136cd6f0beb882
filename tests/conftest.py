"""Shared test configuration. The stack fixtures come from pulse_local's pytest plugin
(`pulse_local.testing.plugin`), which every user of the package gets too."""

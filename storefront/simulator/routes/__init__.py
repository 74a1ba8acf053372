"""The simulator's HTTP surface: one blueprint per Klevu service, plus control and dashboard."""

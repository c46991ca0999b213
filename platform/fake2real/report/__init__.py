"""Tables and figures from experiment results."""

"""The training objectives as pure functions: GRPO, zoom credit, DPO and preference pairs."""

"""Decisions: what to tell and do from the models' outputs (reasons, and later the worklist, discounts and
grades). This room reads fitted outputs and the policy; it never imports the training orchestration."""

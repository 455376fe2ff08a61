"""Rules: safe three-valued expressions, calculators, and their evaluation."""

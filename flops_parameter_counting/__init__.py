"""The cost tool (detailed_cost_analysis.py) as a package, so that train.py can import its memory estimate."""

"""The articles' warnings as behaviour: screening, limits, history."""

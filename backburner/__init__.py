"""backburner"""

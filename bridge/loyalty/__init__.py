"""Loyalty processing client, protocol models and offline journal."""

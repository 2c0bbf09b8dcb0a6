"""Learners: BC, offline critic + clipped improvement, PPO, the Uni-O4 and recovery recipes, world-model losses."""

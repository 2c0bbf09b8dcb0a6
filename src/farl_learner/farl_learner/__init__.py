"""farl_learner."""

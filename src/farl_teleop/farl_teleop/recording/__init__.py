"""Demo recording: one MCAP file per episode (episode_file) and reading them back (episode_reader)."""

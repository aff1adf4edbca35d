"""The SAC mathematics: networks, the update (continuous and discrete), the replay buffer, observation
normalization and learning-rate schedules. Plain torch and NumPy: no Hydra, no files, no environment."""

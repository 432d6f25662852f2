"""The shared denoising engine: schedules, samplers, guidance, the denoising loop and mask pieces."""

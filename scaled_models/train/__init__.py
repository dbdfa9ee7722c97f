"""python -m scaled_models.train: make the Table 7 models nobody publishes, and say what each
one is.

Four recipes:

* match (the resolution role): the baseline's weights at Table 7's 448 px, every weight
  fine-tuned so that the 448 px model says what the baseline says at 224 px about the *same*
  random crop, mixed up (function matching, Beyer et al., "Knowledge distillation: a good teacher
  is patient and consistent", CVPR 2022; self-distillation across resolutions, so no outside
  teacher lends its localization). bfloat16 autocast and channels_last where the CPU has them.
* fixres: the same start, only the BatchNorm statistics re-estimated at 448 px and the
  BatchNorm before the global pooling fine-tuned (Touvron et al., "Fixing the train-test
  resolution discrepancy", NeurIPS 2019). It was built for 1.15-1.5x changes of resolution; at
  2x it lost to the untouched model on held-out photos, so it is kept for comparison only.
* distill (depth, width): a function-preserving expansion of the baseline (scaled_models.expand)
  distilled from a teacher that is not one of the five compared models, since distillation
  transfers the teacher's localization too (Ojha et al., NeurIPS 2023).
* paper: the EfficientNet ImageNet recipe from scratch (RMSProp, BN momentum 0.99, weight
  decay 1e-5, lr 0.256 per 4096 images x0.97 every 2.4 epochs after warm-up, AutoAugment,
  stochastic depth 0.2, dropout 0.2, EMA).

Every model is judged on images it was not fit to: a seeded --holdout split of --data (half of
it by default for labelled photos) or --eval-dir, beside the model it started from and the
baseline on the same images, with 95 % intervals and the exact McNemar test.

This package is the training application: the one part of scaled_models that uses cam (map
agreement, statistics, its images); it reads photos through safe_io like everyone else, and no
library imports it.
"""

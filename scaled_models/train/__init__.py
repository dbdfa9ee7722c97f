"""python -m scaled_models.train: make the Table 7 models nobody publishes, and say what each
one is.

Three recipes:

* fixres (the resolution role): the baseline's weights at Table 7's 448 px, BatchNorm
  statistics re-estimated there on unlabelled photos, then the affine parameters of the
  BatchNorm before the global pooling fine-tuned so the 448 px model matches the baseline's own
  224 px predictions on the same photos (Touvron et al., "Fixing the train-test resolution
  discrepancy", NeurIPS 2019; self-distillation across resolutions, so no outside teacher lends
  its localization). --fine-tune-classifier also tunes the classifier, as FixRes does on the
  full training set; on a few hundred photos it overfits.
* distill (depth, width): a function-preserving expansion of the baseline (scaled_models.expand)
  distilled from a teacher that is not one of the five compared models, since distillation
  transfers the teacher's localization too (Ojha et al., NeurIPS 2023).
* paper: the EfficientNet ImageNet recipe from scratch (RMSProp, BN momentum 0.99, weight
  decay 1e-5, lr 0.256 per 4096 images x0.97 every 2.4 epochs after warm-up, AutoAugment,
  stochastic depth 0.2, dropout 0.2, EMA).

This package is the training application: the one part of scaled_models that uses cam (its
image decoder, its ImageNet val readers and its map metrics); nothing in cam imports it.
"""

"""Evaluation: every score the package computes, by one path.

  scores            IS, FID, KID (TF-GAN via tfgan_compat), precision/recall,
                    density/coverage (`prdc`) and class-conditional scores
  feature_networks  Inception (TF-Hub) and the domain classifiers
  image_sets        ImageSet and the file readers (npz, image folders, arrays)
  sources           the registry of sample sources by spec (datasets, files,
                    runs, exports, a GAN in memory)
  latents           the one latent sampler
  reference         ReferenceStats: computed, cached, saved, loaded, checked
  protocol          the one protocol record
  score             score_image_set (the one path) and evaluate (specs)
  training          EvalConfig, score_gan and the training callback
"""

from tfklgan.evaluation.feature_networks import FeatureNetwork, load_feature_network
from tfklgan.evaluation.image_sets import ImageSet, ImageSetError
from tfklgan.evaluation.reference import ReferenceStats
from tfklgan.evaluation.score import ScoringOptions, evaluate, score_image_set
from tfklgan.evaluation.scores import SCORES
from tfklgan.evaluation.training import EvalConfig, EvaluationCallback, score_gan

__all__ = ["EvalConfig", "EvaluationCallback", "FeatureNetwork", "ImageSet", "ImageSetError",
           "ReferenceStats", "SCORES", "ScoringOptions", "evaluate", "load_feature_network",
           "score_gan", "score_image_set"]

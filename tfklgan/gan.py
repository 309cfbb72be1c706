"""The GAN model: a `keras.Model` whose `train_step` trains G and D.

`GAN(networks, objective)` holds the generator and discriminator of a
`NetworkPair`; `compile(g_optimizer, d_optimizer)`; `fit(dataset)` where the
dataset yields images [n, H, W, C] in [-1, 1] (or (images, one-hot labels)
for class-conditional networks).

Update rules (picked by `objective.update`):
- "joint" (KL-GAN): one tape, one gradient of -SKL for all variables; D's
  gradients are applied as they are (D ascends SKL), G's negated (G descends).
- "alternating": per `train_step`, n_critic D steps, each on its own real
  batch, then one G step (or the G step first with `generator_first=True`,
  the KL-GAN authors' baselines' order: G, then D, per batch; with
  `reuse_generated=True` the first D step then trains on the images the G
  step generated, before G's update, as the authors' code does).

Distribution: every random draw (latents, labels, interpolation weights) is
made for the global batch from a stateless seed (base seed, optimizer step)
and sliced per replica, KL statistics and minibatch similarities span the
global batch, and losses are scaled so that the sum of the replicas'
gradients is the single-device gradient. Training under MirroredStrategy
therefore equals single-device training on the same global batches.
"""

import keras
import numpy as np
import tensorflow as tf

from tfklgan import ada as ada_lib
from tfklgan import augment, distribute, losses, native, penalties
from tfklgan.evaluation.latents import draw_latents
from tfklgan.objectives import judged_real_fraction

UPDATES = ("joint", "alternating")

# Random streams per optimizer step.
(_LATENT, _LABELS, _ALPHA, _G_LATENT, _G_LABELS, _AUG_REAL, _AUG_GEN, _AUG_G,
 _AUG_VALID) = range(9)
_STREAMS = 8
# One counter-based generator everywhere ("auto_select" picks by device).
# Note: under XLA, TF's Philox normal/uniform draws from a runtime seed differ
# from the CPU kernels', so jit_compile=True runs are reproducible among
# themselves but not bit-equal to non-jit runs.
_RNG = "philox"


def group_critic_batches(dataset, n_critic):
    """Groups n_critic consecutive batches for one alternating `train_step`.

    `dataset` yields images [B, H, W, C] (or (images, labels)); the result
    yields [B, n_critic, H, W, C] (and [B, n_critic, classes]). Keeping the
    batch axis first lets a distribution strategy split every one of the
    n_critic batches across replicas exactly as one device would see it.
    Identity for n_critic = 1.
    """
    if n_critic == 1:
        return dataset

    def batch_major(*parts):
        moved = tuple(tf.experimental.numpy.moveaxis(p, 0, 1) for p in parts)
        return moved if len(moved) > 1 else moved[0]

    return dataset.batch(n_critic, drop_remainder=True).map(
        batch_major, num_parallel_calls=tf.data.AUTOTUNE)


class GAN(keras.Model):
    """Generator + discriminator + objective.

    Args:
      networks: a `NetworkPair` (generator, discriminator, latent_dim, ...).
      objective: a `KLObjective` or `AdversarialObjective`.
      n_critic: D steps per G step (alternating objectives). Each
        `train_step` is one generator iteration: it takes n_critic real
        batches (see `group_critic_batches`) for n_critic D steps and then
        makes one G step.
      generator_first: for alternating objectives, the G step comes before
        the D steps.
      reuse_generated: with `generator_first`, the first D step trains on the
        G step's images (generated before G's update) instead of drawing new
        latents and generating again.
      ema_decay: if > 0, keep `ema_generator`, an exponential moving average
        of G's weights, updated after every G step and used for sampling.
      seed: base seed of every random draw in training.
      log_gradient_norms: report the global gradient norms of G and D.
      augment_policy: DiffAugment's transforms (`tfklgan.augment`), applied
        to every image D sees, real and generated, in D's and G's updates
        (penalties are taken on the augmented images D sees); None: none.
      ada_validation: held-out real images, uint8 [m, H, W, C], for ADA's r_v
        heuristic (`ada.heuristic == "rv"`), needed only to train.
      ada: an `ada.AdaSettings` for adaptive augmentation (ADA) instead: the
        same places, ADA's pipeline at strength `ada_p`, which the controller
        moves every `interval` D steps by the sign of D's outputs on real
        images (for KL-GAN, of the log-likelihood ratio of their features
        under the real and generated Gaussians,
        `losses.judged_real_by_features`); R1 is then
        taken through the augmentation with respect to the reals, as ADA's
        code takes it.
    """

    def __init__(self, networks, objective, n_critic=1, generator_first=False,
                 reuse_generated=False, ema_decay=0.0, seed=0, log_gradient_norms=True,
                 augment_policy=None, ada=None, ada_validation=None, **kwargs):
        super().__init__(**kwargs)
        if objective.update not in UPDATES:
            raise ValueError(f"objective.update must be one of {UPDATES}, "
                             f"got {objective.update!r}")
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic!r}")
        if reuse_generated and not generator_first:
            raise ValueError("reuse_generated needs generator_first: the D step reuses "
                             "the images of the G step before it")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
        disc = networks.discriminator
        if objective.head == "features" and disc.head is not None:
            raise ValueError("KL-GAN needs a discriminator that emits features; "
                             "build the networks with head='features'")
        if objective.head == "logit" and disc.output_dim != 1:
            raise ValueError("this objective needs a discriminator with one "
                             "logit; build the networks with head='logit'")
        self.generator = networks.generator
        self.discriminator = networks.discriminator
        self.latent_dim = networks.latent_dim
        self.latent_distribution = networks.latent_distribution
        self.num_classes = networks.num_classes
        self.objective = objective
        self.generator_first = generator_first
        self.reuse_generated = reuse_generated
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)
        self.log_gradient_norms = log_gradient_norms
        self.augment_policy = (augment.parse_policy(augment_policy) if augment_policy
                               else None)
        if ada is not None and augment_policy:
            raise ValueError("ADA and a DiffAugment policy exclude each other: choose one")
        self.ada = ada
        self.rv = ada is not None and ada.heuristic == "rv"
        if self.rv and (objective.update != "alternating" or self.conditional):
            raise ValueError("ADA's r_v heuristic needs D's scores of unconditional images: "
                             "an alternating, unconditional method")
        if ada is not None:  # the controller's state, saved with the checkpoints
            self.ada_state = ada_lib.AdaState(with_validation=self.rv)
        # held-out reals for r_v, uint8 [m, H, W, C] (needed to train, not to sample)
        self.ada_validation = (None if ada_validation is None
                               else tf.constant(np.asarray(ada_validation, np.uint8)))
        self.n_critic = int(n_critic) if objective.update == "alternating" else 1
        self.ema_generator = None
        if self.ema_decay:
            self.ema_generator = keras.models.clone_model(self.generator)
            self.ema_generator.set_weights(self.generator.get_weights())
        names = list(objective.metric_names)
        if ada is not None:
            names += ["ada_p", "ada_rv" if self.rv else "ada_rt"]
        if log_gradient_norms:
            names += ["g_grad_norm", "d_grad_norm"]
        self._trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.built = True  # no call(): mark built so fit() under a strategy works

    # ---------------------------------------------------------------- setup

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        """`kwargs` go to keras.Model.compile (jit_compile, steps_per_execution)."""
        kwargs.setdefault("jit_compile", False)
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return list(self._trackers.values())

    @property
    def conditional(self):
        return self.num_classes > 0

    # ---------------------------------------------------------- sampling

    def _stateless(self, kind, shape, counter, stream):
        dtype = keras.config.floatx()
        seed = tf.stack([tf.constant(self.seed, tf.int64),
                         tf.cast(counter, tf.int64) * _STREAMS + stream])
        samplers = {
            "normal": lambda: tf.random.stateless_normal(shape, seed, alg=_RNG, dtype=dtype),
            "uniform": lambda: tf.random.stateless_uniform(shape, seed, minval=-1.0,
                                                           maxval=1.0, alg=_RNG, dtype=dtype),
            "unit": lambda: tf.random.stateless_uniform(shape, seed, alg=_RNG, dtype=dtype),
            "labels": lambda: tf.one_hot(tf.random.stateless_uniform(
                shape, seed, minval=0, maxval=self.num_classes, dtype=tf.int32, alg=_RNG),
                self.num_classes, dtype=dtype),
        }
        return samplers[kind]()

    def _draw(self, kind, local_n, tail, counter, stream):
        """A global-batch draw, sliced to this replica's rows."""
        global_n = local_n * distribute.num_replicas()
        values = self._stateless(kind, [global_n, *tail], counter, stream)
        return distribute.replica_slice(values, local_n)

    def _latents_and_labels(self, n, counter, latent_stream, label_stream):
        latents = self._draw(self.latent_distribution, n, [self.latent_dim],
                             counter, latent_stream)
        labels = None
        if self.conditional:
            labels = self._draw("labels", n, [], counter, label_stream)
        return latents, labels

    def _augmented(self, images, counter, stream):
        """`images` through DiffAugment with draws of the global batch, or as
        they are without a policy."""
        if self.ada is not None:
            draws = self._draw("unit", tf.shape(images)[0], [ada_lib.ALL_DRAWS], counter,
                               stream)
            return ada_lib.augment(images, draws, self.ada_state.p, self.ada.transforms)
        if self.augment_policy is None:
            return images
        draws = self._draw("unit", tf.shape(images)[0],
                           [augment.draws_needed(self.augment_policy)], counter, stream)
        return augment.diff_augment(images, draws, self.augment_policy)

    def _ada_observe(self, judged, global_batch=False):
        """Adds this step's real images, `judged` real (True) or generated by D,
        to the controller's count over the global batch (`global_batch`: every
        replica holds all of it already) and, every `ada.interval` D steps,
        adjusts p from them (`ada.adjust`)."""
        state, ada = self.ada_state, self.ada
        judged = tf.cast(tf.reshape(judged, [-1]), tf.float32)
        total = (lambda x: x) if global_batch else distribute.replica_sum
        # sign(D(real)): +1 judged real, -1 judged generated
        signs = state.signs + total(tf.reduce_sum(2.0 * judged - 1.0))
        seen = state.seen + total(tf.cast(tf.size(judged), tf.float32))
        due = tf.equal(self.d_optimizer.iterations % ada.interval, 0)
        p, r_t = ada_lib.adjust(state.p, signs, seen, ada.target, ada.speed_images)
        zero = tf.zeros_like(seen)
        distribute.assign_variables(
            [state.p, state.r_t, state.signs, state.seen], lambda _, value: value,
            sources=[tf.where(due, p, state.p), tf.where(due, r_t, state.r_t),
                     tf.where(due, zero, signs), tf.where(due, zero, seen)])
        self._record({"ada_p": state.p, "ada_rt": state.r_t})

    def _ada_observe_rv(self, real_out, gen_out, critic, n, step):
        """r_v's sums: D's outputs on this step's training reals, generated
        images and as many held-out reals (the next of them in turn, augmented
        as the reals are), over the global batch; p adjusted every
        `ada.interval` D steps (`ada.adjust_rv`)."""
        if self.ada_validation is None:
            raise ValueError("ADA's r_v heuristic needs held-out reals (ada_validation)")
        state, ada = self.ada_state, self.ada
        held_out = tf.shape(self.ada_validation, out_type=tf.int64)[0]
        global_n = tf.cast(n * distribute.num_replicas(), tf.int64)
        index = (tf.cast(step, tf.int64) * global_n + tf.range(global_n)) % held_out
        valid = tf.gather(self.ada_validation, distribute.replica_slice(index, n))
        valid = tf.cast(valid, keras.config.floatx()) / 127.5 - 1.0
        valid_out = critic(self._augmented(valid, step, _AUG_VALID), None)
        sums = [distribute.replica_sum(tf.reduce_sum(tf.cast(out, tf.float32)))
                for out in (real_out, valid_out, gen_out)]
        seen = state.seen + distribute.replica_sum(tf.cast(tf.size(real_out), tf.float32))
        real_sum, valid_sum, gen_sum = (state.real_sum + sums[0], state.valid_sum + sums[1],
                                        state.gen_sum + sums[2])
        due = tf.equal(self.d_optimizer.iterations % ada.interval, 0)
        p, r_v = ada_lib.adjust_rv(state.p, real_sum, valid_sum, gen_sum, seen, ada.target,
                                   ada.speed_images)
        zero = tf.zeros_like(seen)
        distribute.assign_variables(
            [state.p, state.r_t, state.seen, state.real_sum, state.valid_sum, state.gen_sum],
            lambda _, value: value,
            sources=[tf.where(due, p, state.p), tf.where(due, r_v, state.r_t),
                     tf.where(due, zero, seen), tf.where(due, zero, real_sum),
                     tf.where(due, zero, valid_sum), tf.where(due, zero, gen_sum)])
        self._record({"ada_p": state.p, "ada_rv": state.r_t})

    def sample_latents(self, n, seed=0):
        """Latents [n, latent_dim] from the generator's prior, fixed by `seed`
        (`tfklgan.evaluation.latents`, the sampler scoring uses)."""
        return tf.constant(draw_latents(self.latent_dim, self.latent_distribution, n, seed),
                           keras.config.floatx())

    def generate(self, latents, labels=None, use_ema=True, training=False):
        """Images [n, H, W, C] in [-1, 1] from latents (and one-hot labels)."""
        net = self.ema_generator if (use_ema and self.ema_generator) else self.generator
        if self.conditional:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass "
                                 "one-hot labels [n, num_classes]")
            dtype = keras.config.floatx()
            return net([tf.cast(latents, dtype), tf.cast(labels, dtype)], training=training)
        return net(latents, training=training)

    # ------------------------------------------------------------- training

    def fit(self, x=None, *args, **kwargs):
        """keras.Model.fit; a tf.data.Dataset is taken in its own order (it is
        shuffled by its pipeline), so Keras' array-only `shuffle` defaults to off."""
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)
        return super().fit(x, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # The networks are built when constructed. Keras' symbolic build would
        # first reduce a sample batch across replicas, which fails for
        # (images, labels) batches under MultiWorkerMirroredStrategy.
        if distribute.multi_worker(self.distribute_strategy):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        # XLA cannot compile tfklgan's fused CPU kernels.
        with native.graph_ops_only(self.jit_compile is True):
            return self._train_step(data)

    def _train_step(self, data):
        if self.conditional:
            if not isinstance(data, (tuple, list)) or len(data) < 2:
                raise ValueError("a class-conditional GAN needs (images, "
                                 "one-hot labels) batches")
            real, labels = data[0], tf.cast(data[1], keras.config.floatx())
        else:
            real = data[0] if isinstance(data, (tuple, list)) else data
            labels = None
        if self.objective.update == "joint":
            self._joint_step(real, labels)
        else:
            self._alternating_step(real, labels)
        results = {name: tracker.result() for name, tracker in self._trackers.items()}
        if distribute.multi_worker():
            # Keras reduces the returned values across workers along axis 0,
            # which a scalar does not have.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def _record(self, values):
        for name, value in values.items():
            self._trackers[name].update_state(value)

    def _record_grad_norm(self, name, grads):
        if self.log_gradient_norms:
            # The replicas' gradients sum to the global gradient.
            self._record({name: tf.linalg.global_norm(distribute.replica_sum(grads))})

    def _joint_step(self, real, labels):
        n = tf.shape(real)[0]
        obj = self.objective
        latents, gen_labels = self._latents_and_labels(
            n, self.d_optimizer.iterations, _LATENT, _LABELS)
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fake = self.generate(latents, gen_labels, use_ema=False, training=True)
            step = self.d_optimizer.iterations
            seen_real = self._augmented(real, step, _AUG_REAL)
            seen_fake = self._augmented(fake, step, _AUG_GEN)
            # Features of the global batch on every replica (one collective).
            real_f, gen_f = self.discriminator.pair(seen_real, seen_fake, labels, gen_labels,
                                                    training=True,
                                                    global_outputs=True)
            moments = [losses.gaussian_moments(f, obj.eps, obj.kl_stats)
                       for f in (real_f, gen_f)]
            skl, kl_pq, kl_qp = losses.symmetric_kl(*moments)
            # Every replica holds the global SKL and its gradient flows back
            # through the gather's all-reduce to every replica, so the
            # optimizer's sum over replicas would count it num_replicas times.
            d_objective = -skl / distribute.num_replicas()
        grads = tape.gradient(d_objective, d_vars + g_vars)
        d_grads = grads[:len(d_vars)]
        g_grads = [-g for g in grads[len(d_vars):]]  # G descends SKL
        self.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars, strict=True))
        self._update_ema()
        if self.ada is not None:  # the features' log-likelihood ratio stands for a logit
            self._ada_observe(losses.judged_real_by_features(
                tf.stop_gradient(real_f), tf.stop_gradient(gen_f), obj.eps, obj.kl_stats),
                global_batch=True)
        self._record({"skl": skl, "kl_real_gen": kl_pq, "kl_gen_real": kl_qp})
        self._record_grad_norm("d_grad_norm", d_grads)
        self._record_grad_norm("g_grad_norm", g_grads)

    def _alternating_step(self, real, labels):
        n = tf.shape(real)[0]
        if self.n_critic == 1:
            real_batches = [real]
            label_batches = [labels]
        else:  # [n, n_critic, ...] from `group_critic_batches`
            real_batches = [real[:, k] for k in range(self.n_critic)]
            label_batches = [None if labels is None else labels[:, k]
                             for k in range(self.n_critic)]
        generated = [None] * self.n_critic
        if self.generator_first:
            fake_and_labels = self._generator_step(n)
            if self.reuse_generated:
                generated[0] = fake_and_labels
        for real_k, labels_k, generated_k in zip(real_batches, label_batches, generated,
                                                 strict=True):
            self._discriminator_step(real_k, labels_k, generated_k)
        if not self.generator_first:
            self._generator_step(n)

    def _discriminator_step(self, real, labels, generated=None):
        """One D update; `generated` = (images, labels) to train on instead of a
        fresh draw (`reuse_generated`)."""
        obj = self.objective
        n = tf.shape(real)[0]
        step = self.d_optimizer.iterations
        if generated is None:
            latents, gen_labels = self._latents_and_labels(n, step, _LATENT, _LABELS)
            fake = self.generate(latents, gen_labels, use_ema=False, training=True)
        else:
            fake, gen_labels = generated
        fake = tf.stop_gradient(fake)
        # what D sees (DiffAugment's or ADA's transforms, where chosen)
        unaugmented_real = real
        real = self._augmented(real, step, _AUG_REAL)
        fake = self._augmented(fake, step, _AUG_GEN)
        d_vars = self.discriminator.trainable_variables

        def critic(images, images_labels):
            inputs = [images, images_labels] if self.conditional else images
            return self.discriminator(inputs, training=True)

        with tf.GradientTape() as tape:
            real_out, gen_out = self.discriminator.pair(real, fake, labels, gen_labels,
                                                        training=True)
            d_loss = obj.discriminator_loss(real_out, gen_out)
            penalty, metrics = self._d_penalties(critic, real, unaugmented_real, fake, labels,
                                                 gen_labels, n, step)
            total = d_loss + penalty
            # Local means: the optimizer's sum over replicas of mean / R is
            # the global-batch mean.
            scaled = total / distribute.num_replicas()
        d_grads = tape.gradient(scaled, d_vars)
        self.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))
        if self.rv:
            self._ada_observe_rv(real_out, gen_out, critic, n, step)
        elif self.ada is not None:
            self._ada_observe(obj.judged_real(real_out))
        if obj.clip_value is not None:
            clip = obj.clip_value
            distribute.assign_variables(
                d_vars, lambda v: penalties.clip_value(v, clip))
        metrics.update({
            "d_loss": d_loss,
            "wasserstein_estimate": tf.reduce_mean(real_out) - tf.reduce_mean(gen_out),
            "d_acc_real": judged_real_fraction(obj, real_out),
            "d_acc_gen": 1.0 - judged_real_fraction(obj, gen_out),
        })
        self._record(metrics)
        self._record_grad_norm("d_grad_norm", d_grads)

    def _d_penalties(self, critic, real, unaugmented_real, fake, labels, gen_labels, n, step):
        """(the weighted sum of the objective's penalties on D, their metrics):
        WGAN-GP's gradient penalty on interpolates (of the labels too, for a
        conditional D) and R1 on the reals, taken through ADA's augmentation
        with respect to the reals before it where ADA is on, as ADA's code."""
        obj, total, metrics = self.objective, 0.0, {}
        if obj.gradient_penalty_weight:
            alpha = self._draw("unit", n, [1, 1, 1], step, _ALPHA)
            interp_labels = labels
            if self.conditional:  # interpolate the conditioning as well
                interp_labels = (alpha[:, :, 0, 0] * labels
                                 + (1 - alpha[:, :, 0, 0]) * gen_labels)
            gp = penalties.gradient_penalty(lambda x: critic(x, interp_labels), real, fake,
                                            alpha, norm=obj.gp_norm)
            total += obj.gradient_penalty_weight * gp
            metrics["gradient_penalty"] = gp
        if obj.r1_gamma:
            if self.ada is not None:  # the same draws as the reals D saw
                r1 = penalties.r1_penalty(
                    lambda x: critic(self._augmented(x, step, _AUG_REAL), labels),
                    unaugmented_real)
            else:
                r1 = penalties.r1_penalty(lambda x: critic(x, labels), real)
            total += obj.r1_gamma * r1
            metrics["r1_penalty"] = r1
        return total, metrics

    def _generator_step(self, n):
        """One G update; returns the (images, labels) it generated."""
        step = self.g_optimizer.iterations
        latents, gen_labels = self._latents_and_labels(n, step, _G_LATENT, _G_LABELS)
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fake = self.generate(latents, gen_labels, use_ema=False, training=True)
            seen = self._augmented(fake, step, _AUG_G)
            inputs = [seen, gen_labels] if self.conditional else seen
            g_loss = self.objective.generator_loss(
                self.discriminator(inputs, training=True))
            scaled = g_loss / distribute.num_replicas()
        g_grads = tape.gradient(scaled, g_vars)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars, strict=True))
        self._update_ema()
        self._record({"g_loss": g_loss})
        self._record_grad_norm("g_grad_norm", g_grads)
        return fake, gen_labels

    def _update_ema(self):
        if self.ema_generator is None:
            return
        decay = self.ema_decay
        distribute.assign_variables(
            self.ema_generator.weights,
            lambda ema, w: decay * ema + (1.0 - decay) * w,
            sources=self.generator.weights)

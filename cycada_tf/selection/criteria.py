"""Label-free criteria over class probabilities: information maximisation (Krause et al. 2010; the objective
SHOT adapts with), I(x; y) = H(E_x[p(y|x)]) - E_x[H(p(y|x))] in nats, high when every prediction is confident
and the predictions spread over the classes; and the agreement of two models' predicted classes."""

import numpy as np


class InformationMaximisation:
    """I(x; y) accumulated over batches of class probabilities (..., K) (segmenters: every pixel an example),
    without keeping them: the marginal's sum and the entropies' sum."""

    def __init__(self):
        self.total, self.entropy, self.count = 0.0, 0.0, 0

    def update(self, probabilities):
        p = np.asarray(probabilities, np.float64)
        p = np.clip(p.reshape(-1, p.shape[-1]), 1e-12, 1.0)
        self.total = self.total + p.sum(axis=0)
        self.entropy += float(-(p * np.log(p)).sum())
        self.count += len(p)
        return self

    def mean_entropy(self):
        """E_x[H(p(y|x))], in nats (lower: more confident)."""
        return self.entropy / self.count

    def result(self):
        marginal = self.total / self.count
        return float(-(marginal * np.log(marginal)).sum() - self.entropy / self.count)


def information_maximisation(probabilities):
    """I(x; y) of class probabilities (N, K), in nats."""
    return InformationMaximisation().update(probabilities).result()


def agreement(labels, others):
    """The mean, over the label arrays `others`, of the fraction of examples where they equal `labels`."""
    return float(np.mean([np.mean(np.asarray(labels) == np.asarray(o)) for o in others])) if others else 0.0


def choose(criteria, oracle=None, choice=None):
    """{"choice": `choice`, by default the key of the largest criterion, "criterion": criteria, "oracle_choice":
    the key of the largest `oracle` value (target test scores, reporting only), "agrees": whether they match}."""
    choice = max(criteria, key=criteria.get) if choice is None else choice
    result = {"choice": choice, "criterion": {k: round(float(v), 6) for k, v in criteria.items()}}
    if oracle:
        best = max(oracle, key=oracle.get)
        result.update(oracle_choice=best, oracle={k: round(float(v), 6) for k, v in oracle.items()},
                      agrees=best == choice)
    return result

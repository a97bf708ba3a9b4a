"""Searching one keep ratio per node under a MACs budget, scored by the PruningNet.

Three searches over the same space, each evaluating at most ``population × iterations``
candidates (distinct width lists; a repeat is looked up, not rescored):

- ``evolution`` (MetaPruning's): a random population within the budget, then each iteration
  keeps the best ``parents`` by validation accuracy and refills the population half by
  mutation (each node's ratio redrawn with probability ``mutation``) and half by uniform
  crossover of two parents; candidates over the budget are rejected before scoring;
- ``random``: the same number of random candidates within the budget (the control);
- ``rl``: an actor-critic agent as in AMC (He et al., ECCV 2018): the state of node i is its
  embedding from the trained aggregator (full width) with its position and the share of the
  budget left, the action its keep ratio (a Gaussian policy squashed to [0.1, 1]), the reward
  the candidate's validation accuracy / 100 given to every step of the episode, the critic a
  baseline for the advantage. The budget is enforced by clamping: the proposed ratios are
  scaled by the largest common factor that meets it (snapped to the ratio grid).

Every random choice is seeded. Scores are cached by width list in ``candidates.jsonl`` when a
folder is given, so a killed search replays to the same place without rescoring and ends with
the same result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from topoprune.errors import TopopruneError
from topoprune.measure import count
from topoprune.measure.counts import Counts
from topoprune.models import create_model
from topoprune.pruning.graphpruning.layer_graph import LayerGraph
from topoprune.pruning.graphpruning.pruning_net import RATIOS, PruningNet

CANDIDATES = "candidates.jsonl"
MAX_DRAWS = 200
SEARCHES = ("evolution", "random", "rl")


@dataclass
class Candidate:
    """One scored configuration: keep ratios (n,), the width list, its MACs, validation score."""

    ratios: list[float]
    widths: list[int]
    macs: int
    val_loss: float
    val_acc: float


class SearchSpace:
    """The ratios' grid, the budget and the scorer, with a cache of scored candidates.

    ``scorer(ratios (n,) tensor) -> (val_loss, val_acc)``; ``budget``: the most ``kind``
    ("macs" or "params", true counts of the narrower model) allowed.
    """

    def __init__(
        self,
        graph: LayerGraph,
        scorer: Callable[[torch.Tensor], tuple[float, float]],
        budget: int,
        input_size: tuple[int, int, int],
        folder: Path | None = None,
        progress: bool = False,
        kind: str = "macs",
    ) -> None:
        self.graph, self.scorer, self.budget, self.input_size = graph, scorer, budget, input_size
        self.kind = kind
        self.nodes = len(graph.nodes)
        self.path = None if folder is None else folder / CANDIDATES
        self.cache: dict[tuple[int, ...], Candidate] = {}
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    candidate = Candidate(**json.loads(line))
                    self.cache[tuple(candidate.widths)] = candidate
        self._counts: dict[tuple[int, ...], Counts] = {}
        self.history: list[Candidate] = []  # this search's evaluations, in order
        self.bar = tqdm(desc="search", disable=not progress, leave=False)

    def counts(self, ratios: np.ndarray) -> Counts:
        """The true counts of the model narrowed to ``ratios`` (n,)."""
        widths = tuple(self.graph.widths(ratios))
        if widths not in self._counts:
            model = create_model(
                self.graph.model_name, **self.graph.model_kwargs, widths=list(widths)
            )
            self._counts[widths] = count(model, self.input_size)
        return self._counts[widths]

    def macs(self, ratios: np.ndarray) -> int:
        return self.counts(ratios).macs

    def fits(self, ratios: np.ndarray) -> bool:
        return getattr(self.counts(ratios), self.kind) <= self.budget

    def evaluate(self, ratios: np.ndarray) -> Candidate:
        """Score ``ratios`` (or read its score from the cache) and record it."""
        widths = tuple(self.graph.widths(ratios))
        if widths not in self.cache:
            loss, accuracy = self.scorer(torch.tensor(ratios, dtype=torch.float32))
            candidate = Candidate(
                [float(r) for r in ratios], list(widths), self.macs(ratios), loss, accuracy
            )
            self.cache[widths] = candidate
            if self.path is not None:
                with self.path.open("a") as handle:
                    handle.write(json.dumps(asdict(candidate)) + "\n")
        self.history.append(self.cache[widths])
        self.bar.update()
        return self.cache[widths]

    def random_ratios(self, rng: np.random.Generator) -> np.ndarray:
        """Ratios drawn from the grid, redrawn until they fit the budget; under a budget so
        tight that ``MAX_DRAWS`` draws all miss it, the last draw scaled down until it fits
        (:func:`clamp_to_budget`)."""
        for _ in range(MAX_DRAWS):
            ratios = rng.choice(RATIOS, size=self.nodes)
            if self.fits(ratios):
                return ratios
        ratios = clamp_to_budget(self, ratios)
        if self.fits(ratios):
            return ratios
        raise TopopruneError(
            f"even {RATIOS[0]} of every width exceeds {self.budget:,} {self.kind}: raise the budget"
        )

    def best(self) -> Candidate:
        return max(self.history, key=lambda c: (c.val_acc, -c.val_loss))

    def best_so_far(self) -> list[float]:
        """Validation accuracy of the best candidate after each evaluation."""
        return np.maximum.accumulate([c.val_acc for c in self.history]).tolist()


def random_search(space: SearchSpace, candidates: int, seed: int) -> Candidate:
    """The best of ``candidates`` random configurations within the budget."""
    rng = np.random.default_rng([seed, 1])
    for _ in range(candidates):
        space.evaluate(space.random_ratios(rng))
    return space.best()


def evolution(
    space: SearchSpace,
    *,
    population: int = 50,
    iterations: int = 20,
    parents: int = 10,
    mutation: float = 0.1,
    seed: int = 0,
) -> Candidate:
    """MetaPruning's evolutionary search (see the module docstring)."""
    rng = np.random.default_rng([seed, 2])
    members = [space.random_ratios(rng) for _ in range(population)]
    for iteration in range(iterations):
        scored = sorted(((space.evaluate(r), r) for r in members), key=lambda p: -p[0].val_acc)
        if iteration == iterations - 1:
            break
        top = [ratios for _, ratios in scored[:parents]]
        members = list(top)
        while len(members) < population:
            if len(members) % 2:
                child = np.array(top[rng.integers(len(top))])
                redraw = rng.random(space.nodes) < mutation
                child[redraw] = rng.choice(RATIOS, size=int(redraw.sum()))
            else:
                first, second = rng.choice(len(top), size=2)
                take = rng.random(space.nodes) < 0.5
                child = np.where(take, top[first], top[second])
            if space.fits(child):
                members.append(child)
    return space.best()


def _snap(ratios: np.ndarray) -> np.ndarray:
    grid = np.array(RATIOS)
    return grid[np.abs(grid[None, :] - ratios[:, None]).argmin(axis=1)]


def clamp_to_budget(space: SearchSpace, ratios: np.ndarray) -> np.ndarray:
    """``ratios`` scaled by the largest common factor in (0, 1] that meets the budget, snapped
    to the grid (the smallest grid ratio everywhere when even that does not fit)."""
    ratios = _snap(np.clip(ratios, RATIOS[0], 1.0))
    if space.fits(ratios):
        return ratios
    low, high = 0.0, 1.0
    for _ in range(20):
        middle = (low + high) / 2
        if space.fits(_snap(np.clip(ratios * middle, RATIOS[0], 1.0))):
            low = middle
        else:
            high = middle
    return _snap(np.clip(ratios * low, RATIOS[0], 1.0))


class _Agent(nn.Module):
    """Actor (mean of a Gaussian keep ratio, before squashing) and critic over a node's state."""

    def __init__(self, state: int, hidden: int = 64) -> None:
        super().__init__()
        self.actor = nn.Sequential(nn.Linear(state, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.critic = nn.Sequential(nn.Linear(state, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.log_std = nn.Parameter(torch.tensor(-0.5))


def actor_critic(
    space: SearchSpace,
    net: PruningNet,
    *,
    episodes: int = 1000,
    lr: float = 1e-3,
    seed: int = 0,
) -> Candidate:
    """AMC-style search (see the module docstring): one candidate per episode; the states are
    ``net``'s node embeddings at full width."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        embedded = net.embeddings(torch.ones(space.nodes)).cpu()
    positions = torch.linspace(0, 1, space.nodes).reshape(-1, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        agent = _Agent(embedded.shape[1] + 2)
    optimizer = torch.optim.Adam(agent.parameters(), lr=lr)
    for _ in range(episodes):
        states, log_probs, ratios = [], [], []
        for node in range(space.nodes):
            spent = float(np.mean(ratios)) if ratios else 0.0
            state = torch.cat([embedded[node], positions[node], torch.tensor([spent])])
            mean = agent.actor(state).squeeze()
            std = agent.log_std.exp()
            raw = (mean + std * torch.randn((), generator=generator)).detach()
            log_probs.append(-((raw - mean) ** 2) / (2 * std**2) - agent.log_std)
            states.append(state)
            ratios.append(RATIOS[0] + (1 - RATIOS[0]) * torch.sigmoid(raw).item())
        chosen = clamp_to_budget(space, np.array(ratios))
        reward = space.evaluate(chosen).val_acc / 100
        values = agent.critic(torch.stack(states)).squeeze(1)
        advantage = reward - values
        loss = -(torch.stack(log_probs) * advantage.detach()).mean() + advantage.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return space.best()

"""OmniSage's multi-task objective in the main job (Eq. 6) and the synthetic
user sequences it trains on."""

import math

import pytest
import torch
import torch.nn.functional as F

from pyg_multisage import experiment as ex
from pyg_multisage.datasets import synthetic_multipartite
from pyg_multisage.objectives import OmniSageHeads

SMALL = {"num_targets": 300, "num_contexts": 30, "num_facets": 5, "seed": 0}
USERS = {**SMALL, "num_users": 40, "sequence_length": 6}


def _config(model="omnisage", **kw) -> ex.RunConfig:
    base = dict(
        dataset="synthetic",
        model=model,
        steps=3,
        batch_size=16,
        num_negatives=16,
        hidden_channels=16,
        out_channels=8,
        heads=2,
        feature_hidden_channels=16,
        user_batch_size=6,
        user_max_length=4,
        ppr_top_k=8,
        progress=False,
        synthetic=USERS,
    )
    base.update(kw)
    return ex.RunConfig(**base)


@pytest.fixture(scope="module")
def raw():
    return ex.load_task(_config())


@pytest.fixture(scope="module")
def task(raw):
    return raw.replace_data(ex.add_neighbors(raw, _config()))


def _step(task, config):
    model = ex.build_model(task, config)
    batcher = ex.SeedBatcher(task.data, task.target, ex.model_edge_types(task, config))
    data, step_fn = ex.make_step(model, batcher, task, config)
    return model, data, step_fn


# ---------------------------------------------------------------------------
# Synthetic user sequences
# ---------------------------------------------------------------------------
def test_synthetic_users_engage_with_targets_of_their_facet():
    data = synthetic_multipartite(**USERS)
    seq, facet = data.user_sequences, data.user_facet
    assert seq.shape == (40, 6) and seq.dtype == torch.int64
    assert int(seq.min()) >= 0 and int(seq.max()) < 300
    facets = data["item"].facets  # [N, k] ground truth
    assert bool((facets[seq] == facet[:, None, None]).any(-1).all())
    # Users are drawn last: the graph and the pairs do not depend on them.
    plain = synthetic_multipartite(**SMALL)
    assert "user_sequences" not in plain
    assert torch.equal(plain.train_pairs, data.train_pairs)
    assert torch.equal(plain["item"].x, data["item"].x)
    again = synthetic_multipartite(**USERS)
    assert torch.equal(again.user_sequences, seq)
    with pytest.raises(ValueError, match="sequence_length"):
        synthetic_multipartite(**{**USERS, "sequence_length": 1})
    with pytest.raises(ValueError, match="num_users"):
        synthetic_multipartite(**{**USERS, "num_users": -1})


# ---------------------------------------------------------------------------
# The step function
# ---------------------------------------------------------------------------
def test_heads_cover_every_feature_type_and_the_user_task(task):
    model, _, _ = _step(task, _config())
    heads = model.heads
    assert isinstance(heads, OmniSageHeads)
    # The target's own features and the board features of its neighbors.
    assert heads.feature.feature_channels == {"item": 32, "board": 32}
    assert heads.user is not None and heads.user.max_length == 4
    nograph = ex.build_model(task, _config("omnisage-nograph"))
    assert nograph.heads.feature.feature_channels == {"item": 32}
    # No user sequences, no user-entity head.
    plain = ex.load_task(_config(synthetic=SMALL))
    assert ex.build_model(plain, _config(synthetic=SMALL)).heads.user is None
    # One feature encoder: g_x lives in the task, none in the embedder.
    names = [n for n, _ in model.encoder.named_parameters()]
    assert not any("feature" in n for n in names)


def test_batches_are_a_pure_function_of_seed_and_step(task):
    _, data, _ = _step(task, _config())
    _, data2, _ = _step(task, _config())
    a, b, c = data(3)[1], data2(3)[1], data(4)[1]
    assert set(a) == {"q", "p", "n", "seq", "future"}
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["q"], c["q"])
    seqs = task.user_sequences
    # The history is a user's first t_max actions, the future a later one.
    for row, fut in zip(a["seq"], a["future"], strict=True):
        user = (seqs[:, :4] == row).all(1).nonzero()[:, 0]
        assert any(fut in seqs[u, 4:] for u in user.tolist())


def _pair_reference(model, batch, parts, b):
    """Eq. 1 by hand: in-batch + random negatives, logQ from the counts of
    this batch's candidates (the sketch is empty before), accidental hits
    of the positive's id removed."""
    z = model(batch)
    k = parts["n"].numel()
    q, cand = z[:b] * model.scale, z[b : 2 * b + k]
    ids = torch.cat([parts["p"], parts["n"]])
    counts = (ids[:, None] == ids[None, :]).sum(1).float()
    log_q = torch.log(counts / ids.numel())
    logits = q @ cand.T - log_q
    pos = torch.arange(b)
    hit = parts["p"][:, None] == ids[None, :]
    hit[pos, pos] = False
    logits = logits.masked_fill(hit, -math.inf)
    return F.cross_entropy(logits, pos)


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_pair_term_is_eq1_with_log_q(task, chunk_size):
    config = _config(lambda_feat=0.0, lambda_seq=0.0, chunk_size=chunk_size)
    model, data, step_fn = _step(task, config)
    model.train()
    item = data(0)
    loss = step_fn(item)
    assert int(model.heads.sketch.total) == 32  # b positives + k negatives
    model.heads.sketch.reset()
    ref = _pair_reference(model, item[0], item[1], 16)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    loss.backward()
    grad = model.encoder.model.embedders["item"].head[0].weight.grad.clone()
    model.zero_grad()
    ref.backward()
    ref_grad = model.encoder.model.embedders["item"].head[0].weight.grad
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_task_weights_enter_linearly(task):
    def total(**kw):
        model, data, step_fn = _step(task, _config(**kw))
        model.train()
        return step_fn(data(1)).item()

    base = total(lambda_feat=0.0, lambda_seq=0.0)
    feat = total(lambda_feat=1.0, lambda_seq=0.0) - base
    seq = total(lambda_feat=0.0, lambda_seq=1.0) - base
    assert feat > 0 and seq > 0
    both = total(lambda_feat=2.0, lambda_seq=0.5)
    assert both == pytest.approx(base + 2 * feat + 0.5 * seq, rel=1e-4)


def test_omnisage_trains_end_to_end_with_users(raw, task):
    result = ex.run(_config(steps=25, lr=3e-3), raw)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 25 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-5:]) < sum(losses[:5])
    model = result.model
    # The user transformer and g_x were trained (they got gradients).
    assert int(model.heads.sketch.total) == 25 * 32
    user_w = model.heads.user.lin_in.weight
    fresh = ex.build_model(task, _config()).heads.user.lin_in.weight
    assert not torch.allclose(user_w, fresh)
    torch.testing.assert_close(
        result.embeddings.norm(dim=-1), torch.ones(300), atol=1e-4, rtol=0
    )


def test_omnisage_run_reloads_with_its_heads(tmp_path, raw):
    out = tmp_path / "run"
    full = ex.run(_config(steps=6, output_dir=str(out), checkpoint_every=3), raw)
    config, task2, model, batcher = ex.load_run(out)
    assert int(model.heads.sketch.total) == 6 * 32  # the sketch is saved
    emb = ex.embed_all(model, batcher, task2.data[task2.target].num_nodes)
    torch.testing.assert_close(emb, full.embeddings)


def test_bad_objective_input(task):
    for kw, match in [
        ({"lambda_feat": -1.0}, "lambda_feat must be >= 0"),
        ({"chunk_size": 0}, "chunk_size must be >= 1"),
        ({"user_batch_size": 0}, "user_batch_size must be >= 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            _config(**kw)
    short = task.user_sequences.clone()
    short[3, 1:] = -1  # one user with a single action
    bad = ex.Task(task.data, task.target, task.contexts, task.pairs, None, short)
    with pytest.raises(ValueError, match="at least 2 actions"):
        _step(bad, _config())

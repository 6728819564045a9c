import torch

from ired.science.data import TrainStream, make_split, sample_problems, trivial_baselines


def test_problems_are_spd_and_targets_are_inverses():
    probs = sample_problems(64, 5, 0.5, torch.Generator().manual_seed(0))
    A = probs.A.view(64, 5, 5).double()
    assert torch.allclose(A, A.transpose(1, 2))
    assert torch.linalg.eigvalsh(A).min() >= 0.5 - 1e-5
    eye = A @ probs.A_inv.view(64, 5, 5).double()
    assert torch.allclose(eye, torch.eye(5, dtype=torch.float64).expand_as(eye), atol=1e-4)


def test_splits_are_fixed_and_distinct():
    a = make_split("val", 4, 32, 123)
    make_split.cache_clear()
    b = make_split("val", 4, 32, 123)
    assert torch.equal(a.A, b.A)
    assert not torch.equal(a.A, make_split("train_subset", 4, 32, 123).A)
    assert not torch.equal(a.A, make_split("val", 4, 32, 124).A)


def test_trivial_baselines_match_the_reference_at_n20():
    # the IRED reference: predict 0 -> 0.0207 in-dist, 0.255 harder; predict the mean -> 0.0141 in-dist.
    val = trivial_baselines("val", 20, 2048, 0)
    harder = trivial_baselines("val_harder", 20, 2048, 0)
    assert abs(val["predict_zero_mse"] - 0.0207) < 0.002
    assert abs(val["predict_mean_mse"] - 0.0141) < 0.0015
    assert abs(harder["predict_zero_mse"] - 0.255) < 0.05
    assert val["predict_mean_mse"] < val["predict_zero_mse"]


def test_train_stream_resumes_exactly():
    s = TrainStream(4, 7)
    s.next(16)
    state = s.state_dict()
    expected = s.next(16)
    s2 = TrainStream(4, 99)
    s2.load_state_dict(state)
    assert torch.equal(s2.next(16).A, expected.A)


def test_inverses_split_over_a_helper_thread_are_the_same_bit_for_bit():
    from concurrent.futures import ThreadPoolExecutor

    from ired.science.data import spd_inverse

    g = torch.Generator().manual_seed(3)
    R = torch.rand(513, 20, 20, generator=g, dtype=torch.float64) * 2 - 1  # an odd batch: unequal halves
    A = 2 * R @ R.transpose(1, 2) + 0.5 * torch.eye(20, dtype=torch.float64)
    with ThreadPoolExecutor(max_workers=1) as helper:
        assert torch.equal(spd_inverse(A, helper), spd_inverse(A))
        one = sample_problems(7, 5, 0.5, torch.Generator().manual_seed(1), helper)
    other = sample_problems(7, 5, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(one.A_inv, other.A_inv) and torch.equal(one.A, other.A)

import torch

from napari_unet.engine.training.losses import gated_crf_loss, prior_loss, sparse_cross_entropy


def test_cross_entropy_ignores_unannotated_pixels():
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, 0, 0] = 10  # confident "object" on the annotated object pixel
    ann = torch.tensor([[[2, 0], [0, 0]]])
    low = sparse_cross_entropy(logits, ann)
    logits[0, 1, 1, 1] = -10  # changes on unannotated pixels must not matter
    assert torch.isclose(sparse_cross_entropy(logits, ann), low)
    assert low < 1e-3


def test_cross_entropy_of_a_batch_with_nothing_painted_is_zero_and_keeps_the_graph():
    """A batch of patches all away from the strokes (``TrainConfig.prior_patches``) teaches nothing here."""
    logits = torch.randn(2, 2, 4, 4, requires_grad=True)
    for balanced in (False, True):
        loss = sparse_cross_entropy(logits, torch.zeros(2, 4, 4, dtype=torch.int16), balanced)
        loss.backward()
        assert float(loss) == 0 and torch.isfinite(logits.grad).all()


def test_crf_prefers_boundaries_on_image_edges():
    image = torch.zeros(1, 1, 16, 16)
    image[..., 8:] = 1.0  # an edge between columns 7 and 8
    on_edge = torch.zeros(1, 2, 16, 16)
    on_edge[:, 0, :, :8], on_edge[:, 1, :, 8:] = 1, 1
    off_edge = torch.zeros(1, 2, 16, 16)
    off_edge[:, 0, :, :4], off_edge[:, 1, :, 4:] = 1, 1
    assert gated_crf_loss(on_edge, image) < 0.01 * gated_crf_loss(off_edge, image)
    uniform = torch.full((1, 2, 16, 16), 0.5)
    assert gated_crf_loss(uniform, image) > gated_crf_loss(on_edge, image)


def test_prior_loss_is_zero_where_the_network_agrees_and_ignores_painted_pixels():
    torch.manual_seed(0)
    prior = torch.randn(2, 3, 8, 8)  # two class outputs, then the split output
    ann = torch.zeros(2, 8, 8)
    ann[:, :4] = 2  # the top half is painted
    assert abs(float(prior_loss(prior.clone(), prior, ann, 2, split=True))) < 1e-5
    painted_changed = prior.clone()
    painted_changed[:, :, :4] += torch.randn(2, 3, 4, 8) * 5
    assert abs(float(prior_loss(painted_changed, prior, ann, 2, split=True))) < 1e-5
    free_changed = prior.clone()
    free_changed[:, 0, 4:] += 5  # the network now calls unpainted pixels background
    assert float(prior_loss(free_changed, prior, ann, 2)) > 0.5


def test_prior_loss_keeps_the_split_output_only_where_painted_objects_teach_nothing():
    torch.manual_seed(1)
    prior = torch.randn(1, 3, 8, 8)
    ann = torch.zeros(1, 8, 8)
    targets = torch.zeros(1, 8, 8)
    targets[:, :, :4] = 1.5  # the left half is taught by painted objects (shifted targets)
    taught = prior.clone()
    taught[:, 2, :, :4] += 5
    assert abs(float(prior_loss(taught, prior, ann, 2, targets, split=True))) < 1e-5
    untaught = prior.clone()
    untaught[:, 2, :, 4:] += 5
    assert float(prior_loss(untaught, prior, ann, 2, targets, split=True)) > 0.5
    assert abs(float(prior_loss(untaught, prior, ann, 2, targets, split=False))) < 1e-5

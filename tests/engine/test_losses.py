import torch

from napari_unet.engine.losses import gated_crf_loss, sparse_cross_entropy


def test_cross_entropy_ignores_unannotated_pixels():
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, 0, 0] = 10  # confident "object" on the annotated object pixel
    ann = torch.tensor([[[2, 0], [0, 0]]])
    low = sparse_cross_entropy(logits, ann)
    logits[0, 1, 1, 1] = -10  # changes on unannotated pixels must not matter
    assert torch.isclose(sparse_cross_entropy(logits, ann), low)
    assert low < 1e-3


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

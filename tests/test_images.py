import numpy as np

from tfklgan import images


def test_to_uint8_maps_the_range():
    np.testing.assert_array_equal(images.to_uint8(np.array([-1.0, 0.0, 1.0, 2.0])),
                                  [0, 128, 255, 255])


def test_make_grid_layout():
    tiles = np.stack([np.full((2, 3, 1), v) for v in (-1.0, 1.0, -1.0)])
    grid = images.make_grid(tiles, columns=2, padding=1, pad_value=7)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
    assert np.all(grid[1:3, 1:4] == 0) and np.all(grid[1:3, 5:8] == 255)
    assert np.all(grid[4:6, 1:4] == 0) and np.all(grid[4:6, 5:8] == 7)  # empty 4th tile
    assert np.all(grid[0] == 7)


def test_interpolate_latents_is_linear_between_endpoints():
    start = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    end = np.array([[1.0, 2.0], [-1.0, 1.0]], np.float32)
    frames = images.interpolate_latents(start, end, steps=16).reshape(2, 16, 2)
    np.testing.assert_allclose(frames[:, 0], start)
    np.testing.assert_allclose(frames[:, -1], end)
    np.testing.assert_allclose(frames[0, 5], start[0] + 5 / 15 * (end[0] - start[0]), rtol=1e-6)
    np.testing.assert_allclose(np.diff(frames, axis=1), np.diff(frames, axis=1)[:, :1].repeat(15, 1),
                               atol=1e-6)

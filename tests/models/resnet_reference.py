"""Parameter counts of basic-block ResNets by formula, independent of the model code."""


def basic_resnet_params(in_channels, stage_widths, inner_widths, blocks, classes, projection):
    """Stem 3x3 or 7x7 conv is passed in ``in_channels`` already multiplied by its kernel area.

    ``projection``: the stride-2 first blocks of stages 2… carry a 1x1 conv + BN shortcut.
    """
    total = in_channels * stage_widths[0] + 2 * stage_widths[0]
    inner = iter(inner_widths)
    previous = stage_widths[0]
    for stage, (width, count) in enumerate(zip(stage_widths, blocks, strict=True)):
        for block in range(count):
            middle = next(inner)
            total += 9 * previous * middle + 2 * middle + 9 * middle * width + 2 * width
            if projection and stage > 0 and block == 0:
                total += previous * width + 2 * width
            previous = width
    return total + (previous + 1) * classes

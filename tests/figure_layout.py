"""What a figure test checks about layout: no two drawn texts overlap, none reaches past the canvas, no figure is
too large to read in the report."""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

#: pixels two boxes must share in both directions to count as overlapping (glyph boxes may touch)
TOLERANCE_PX = 1.0


def drawn_texts(figure) -> list[tuple[Text, object]]:
    """Every visible, non-empty text the figure draws, with its box in display pixels: titles, suptitle, axis
    labels, tick labels (of ticks inside the view), legend and colour-bar texts, annotations."""
    canvas = figure.canvas if hasattr(figure.canvas, "get_renderer") else FigureCanvasAgg(figure)  # closed by pyplot
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = []
    for text in figure.findobj(Text):
        if not (text.get_visible() and text.get_text().strip()) or not _in_view(text):
            continue
        texts.append((text, text.get_window_extent(renderer)))
    return texts


def _in_view(text: Text) -> bool:
    """False for the label of a tick outside its axis' view (kept by matplotlib, never drawn)."""
    for axes in text.figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if text in (tick.label1, tick.label2):
                    low, high = sorted(axis.get_view_interval())
                    return tick.get_visible() and low <= tick.get_loc() <= high
    return True


def overlapping_texts(figure) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap (by more than TOLERANCE_PX in both directions)."""
    texts = drawn_texts(figure)
    pairs = []
    for index, (first, box) in enumerate(texts):
        for second, other in texts[index + 1:]:
            width = min(box.x1, other.x1) - max(box.x0, other.x0)
            height = min(box.y1, other.y1) - max(box.y0, other.y0)
            if width > TOLERANCE_PX and height > TOLERANCE_PX:
                pairs.append((first.get_text(), second.get_text()))
    return pairs


#: the largest side a saved figure may have, in pixels at the dpi figures are saved with (a report page is ~1,400 px
#: wide; a browser shrinks a wider PNG until its text is unreadable)
MAX_SIDE_PX = 2400
SAVED_DPI = 150


def texts_outside_the_canvas(figure) -> list[str]:
    """Drawn texts that reach past the figure's own edges (a label cut in half, or left of x = 0): the saved figure
    must hold every text without relying on bbox_inches="tight" to grow the canvas."""
    bounds = figure.bbox
    outside = []
    for text, box in drawn_texts(figure):
        if box.x0 < bounds.x0 - TOLERANCE_PX or box.y0 < bounds.y0 - TOLERANCE_PX or \
                box.x1 > bounds.x1 + TOLERANCE_PX or box.y1 > bounds.y1 + TOLERANCE_PX:
            outside.append(text.get_text())
    return outside


def saved_size_px(figure) -> tuple[int, int]:
    """(width, height) in pixels of the figure as save_all writes it (dpi 150, tight bounding box)."""
    canvas = figure.canvas if hasattr(figure.canvas, "get_renderer") else FigureCanvasAgg(figure)
    canvas.draw()
    box = figure.get_tightbbox(canvas.get_renderer())
    return round(box.width * SAVED_DPI), round(box.height * SAVED_DPI)


def same_looking_lines(figure) -> list[tuple[str, str]]:
    """Pairs of labelled lines of one panel drawn alike (colour, line style, marker): their legend entries name two
    things the reader cannot tell apart on the plot."""
    from matplotlib.colors import to_hex

    pairs = []
    for axis in figure.axes:
        seen: dict[tuple, str] = {}
        for line in axis.get_lines():
            label = line.get_label()
            if label.startswith("_") or not len(line.get_xdata()):
                continue
            look = (to_hex(line.get_color()), line.get_linestyle(), line.get_marker())
            if look in seen and seen[look] != label:
                pairs.append((seen[look], label))
            seen.setdefault(look, label)
    return pairs

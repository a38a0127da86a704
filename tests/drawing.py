"""Helpers the figure tests share."""
import matplotlib.text


def drawn_texts(fig):
    """Draw fig; return [(Text, window extent)] of every text drawn."""
    drawn = []
    draw = matplotlib.text.Text.draw

    def recording(self, renderer):
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    matplotlib.text.Text.draw = recording
    try:
        fig.canvas.draw()
    finally:
        matplotlib.text.Text.draw = draw
    return drawn

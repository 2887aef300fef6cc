//! Pixel geometry for the parts of a plot that plotters does not place: point labels and the
//! legend box.
//!
//! Everything here is in backend pixels (y grows downward) and pure, so placement is unit-tested
//! without drawing. Placement is greedy and deterministic: the same inputs give the same layout.

/// An axis-aligned pixel rectangle, `x0 <= x1`, `y0 <= y1`, half-open on the far edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    /// The rectangle with top-left corner `(x, y)` and size `(w, h)`.
    pub fn at(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        }
    }

    /// The square of half-side `r` around `(x, y)`.
    pub fn around(x: i32, y: i32, r: i32) -> Rect {
        Rect {
            x0: x - r,
            y0: y - r,
            x1: x + r,
            y1: y + r,
        }
    }

    fn overlap(&self, o: &Rect) -> i64 {
        let w = (self.x1.min(o.x1) - self.x0.max(o.x0)).max(0) as i64;
        let h = (self.y1.min(o.y1) - self.y0.max(o.y0)).max(0) as i64;
        w * h
    }

    fn area(&self) -> i64 {
        (self.x1 - self.x0) as i64 * (self.y1 - self.y0) as i64
    }

    /// Area of `self` outside `bounds`.
    fn outside(&self, bounds: &Rect) -> i64 {
        self.area() - self.overlap(bounds)
    }

    /// Whether `(x, y)` lies inside.
    pub fn contains(&self, (x, y): (i32, i32)) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }

    /// Shifts the rectangle the least distance that puts it inside `bounds` (top-left wins when
    /// it is larger than `bounds`).
    fn clamp_into(self, bounds: &Rect) -> Rect {
        let dx = if self.x1 > bounds.x1 {
            bounds.x1 - self.x1
        } else {
            0
        };
        let dy = if self.y1 > bounds.y1 {
            bounds.y1 - self.y1
        } else {
            0
        };
        let mut r = Rect::at(
            self.x0 + dx,
            self.y0 + dy,
            self.x1 - self.x0,
            self.y1 - self.y0,
        );
        if r.x0 < bounds.x0 {
            r = Rect::at(bounds.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0);
        }
        if r.y0 < bounds.y0 {
            r = Rect::at(r.x0, bounds.y0, r.x1 - r.x0, r.y1 - r.y0);
        }
        r
    }
}

/// Where to put a label of `size` for the point at `anchor`, `gap` pixels clear of it: the first
/// of right, left, above, below and the four diagonals that lies inside `bounds` and overlaps no
/// obstacle; failing that, the candidate with the least overlap (outside `bounds` counts as
/// overlap), shifted inside `bounds`.
pub(crate) fn place_label(
    anchor: (i32, i32),
    gap: i32,
    size: (i32, i32),
    bounds: &Rect,
    obstacles: &[Rect],
) -> Rect {
    let (px, py) = anchor;
    let (w, h) = size;
    let candidates = [
        (px + gap, py - h / 2),
        (px - gap - w, py - h / 2),
        (px - w / 2, py - gap - h),
        (px - w / 2, py + gap),
        (px + gap, py - gap - h),
        (px + gap, py + gap),
        (px - gap - w, py - gap - h),
        (px - gap - w, py + gap),
    ];
    let mut best: Option<(i64, Rect)> = None;
    for (x, y) in candidates {
        let r = Rect::at(x, y, w, h);
        let cost = obstacles.iter().map(|o| r.overlap(o)).sum::<i64>() + r.outside(bounds) * 4;
        if cost == 0 {
            return r;
        }
        if best.is_none_or(|(c, _)| cost < c) {
            best = Some((cost, r));
        }
    }
    // Eight candidates always exist, so `best` is set; the fallback keeps this total anyway.
    best.map_or(Rect::at(px + gap, py - h / 2, w, h), |(_, r)| r)
        .clamp_into(bounds)
}

/// The corner of `bounds` (inset by `pad`) for a legend box of `size` that covers the fewest
/// `points`; ties go to upper-right, upper-left, lower-right, lower-left in that order.
pub(crate) fn legend_box(size: (i32, i32), bounds: &Rect, pad: i32, points: &[(i32, i32)]) -> Rect {
    let (w, h) = size;
    let corners = [
        Rect::at(bounds.x1 - pad - w, bounds.y0 + pad, w, h),
        Rect::at(bounds.x0 + pad, bounds.y0 + pad, w, h),
        Rect::at(bounds.x1 - pad - w, bounds.y1 - pad - h, w, h),
        Rect::at(bounds.x0 + pad, bounds.y1 - pad - h, w, h),
    ];
    let mut best = corners[0];
    let mut best_count = usize::MAX;
    for c in corners {
        // Grow by the pad so points just outside the box (and their markers) count too.
        let grown = Rect {
            x0: c.x0 - pad,
            y0: c.y0 - pad,
            x1: c.x1 + pad,
            y1: c.y1 + pad,
        };
        let count = points.iter().filter(|p| grown.contains(**p)).count();
        if count < best_count {
            best = c;
            best_count = count;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Rect = Rect {
        x0: 0,
        y0: 0,
        x1: 400,
        y1: 300,
    };

    #[test]
    fn label_goes_right_when_free_left_near_the_right_edge() {
        let r = place_label((100, 100), 5, (40, 10), &BOUNDS, &[]);
        assert_eq!(r, Rect::at(105, 95, 40, 10));
        let r = place_label((390, 100), 5, (40, 10), &BOUNDS, &[]);
        assert_eq!(r, Rect::at(345, 95, 40, 10));
    }

    #[test]
    fn label_avoids_obstacles_and_earlier_labels() {
        let first = place_label((100, 100), 5, (40, 10), &BOUNDS, &[]);
        // A second point just below-left: its right slot would overlap the first label.
        let second = place_label((100, 104), 5, (40, 10), &BOUNDS, &[first]);
        assert_eq!(second.overlap(&first), 0);
        assert_eq!(second, Rect::at(55, 99, 40, 10));
    }

    #[test]
    fn crowded_label_still_ends_inside_bounds() {
        let wall = [Rect::at(0, 0, 400, 300)];
        let r = place_label((398, 2), 5, (40, 10), &BOUNDS, &wall);
        assert!(
            r.x0 >= 0 && r.y0 >= 0 && r.x1 <= 400 && r.y1 <= 300,
            "{r:?}"
        );
    }

    #[test]
    fn legend_takes_the_emptiest_corner() {
        // Points in the upper right: the legend moves to the upper left.
        let pts = [(390, 10), (380, 20), (370, 15)];
        let r = legend_box((100, 40), &BOUNDS, 8, &pts);
        assert_eq!(r, Rect::at(8, 8, 100, 40));
        // No points: upper right.
        let r = legend_box((100, 40), &BOUNDS, 8, &[]);
        assert_eq!(r, Rect::at(292, 8, 100, 40));
    }
}

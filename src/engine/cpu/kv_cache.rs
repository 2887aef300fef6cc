//! The f32 key/value cache of one sequence.
//!
//! Invariants: per layer, keys and values are `[n_ctx, width]` row-major (`width = n_head_kv ×
//! head_dim`), row `p` holding position `p` (keys after RoPE). Rows `0..len` are valid; writing
//! at `pos` truncates the valid range to `pos + rows` (a rewind overwrites).

/// Keys and values of every layer for positions `0..n_ctx`.
#[derive(Debug)]
pub struct KvCache {
    n_ctx: usize,
    width: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// A zeroed cache of `n_layer` layers, `n_ctx` positions, `width` floats per position.
    pub fn new(n_layer: usize, n_ctx: usize, width: usize) -> KvCache {
        KvCache {
            n_ctx,
            width,
            k: (0..n_layer).map(|_| vec![0f32; n_ctx * width]).collect(),
            v: (0..n_layer).map(|_| vec![0f32; n_ctx * width]).collect(),
            len: 0,
        }
    }

    /// Positions the cache can hold.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Positions `0..len()` hold valid entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        2 * self.k.len() * self.n_ctx * self.width * std::mem::size_of::<f32>()
    }

    /// Stores `k` and `v` (`[n, width]`) of `layer` at positions `pos..pos + n`; the caller has
    /// checked `pos + n <= n_ctx`.
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let (a, b) = (pos * self.width, pos * self.width + k.len());
        self.k[layer][a..b].copy_from_slice(k);
        self.v[layer][a..b].copy_from_slice(v);
    }

    /// Marks positions `0..len` valid (after every layer stored its rows).
    pub fn set_len(&mut self, len: usize) {
        self.len = len;
    }

    /// Keys and values of `layer` for positions `0..n`.
    pub fn layer(&self, layer: usize, n: usize) -> (&[f32], &[f32]) {
        let e = n * self.width;
        (&self.k[layer][..e], &self.v[layer][..e])
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

//! Shared harness of the Vulkan integration tests: one validated context per test binary, a lock
//! that runs GPU tests one at a time, and numeric helpers.
//!
//! Policy: a test FAILS when no Vulkan device can be opened, unless `RAWRXD_SKIP_VULKAN=1`
//! (then it returns early and says so). The Khronos validation layer is required
//! (`RAWRXD_VULKAN_VALIDATION=0` turns it off on machines that lack it); any validation error
//! recorded during a test fails that test.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, OnceLock};

use rawrxd::engine::vulkan::{
    DescriptorCache, Gpu, GpuBuffer, GpuOptions, InstanceOptions, MemoryClass, Recorder, Validation,
};

static LOCK: Mutex<()> = Mutex::new(());
static GPU: OnceLock<Gpu> = OnceLock::new();

/// The test's hold on the device: the context and the lock serialising GPU tests.
pub struct Harness {
    pub gpu: Gpu,
    _guard: MutexGuard<'static, ()>,
}

impl Harness {
    /// Fails the test when validation errors were recorded since the harness was taken.
    pub fn finish(self) {
        self.gpu.save_pipeline_cache();
        let errs = self.gpu.take_validation_errors();
        assert!(
            errs.is_empty(),
            "{} Vulkan validation error(s):\n{}",
            errs.len(),
            errs.join("\n")
        );
    }

    /// A recorder and descriptor cache on the harness's device.
    pub fn recorder(&self) -> (Recorder, DescriptorCache) {
        (
            Recorder::new(&self.gpu, false).expect("recorder"),
            DescriptorCache::new(&self.gpu),
        )
    }

    /// A device buffer holding `data` (f32).
    pub fn upload_f32(&self, data: &[f32]) -> GpuBuffer {
        self.upload_bytes(bytemuck::cast_slice(data))
    }

    /// A device buffer holding `data` (u32).
    pub fn upload_u32(&self, data: &[u32]) -> GpuBuffer {
        self.upload_bytes(bytemuck::cast_slice(data))
    }

    /// A device buffer holding `bytes`.
    pub fn upload_bytes(&self, bytes: &[u8]) -> GpuBuffer {
        let b = self
            .gpu
            .buffer(bytes.len().max(4) as u64, MemoryClass::Device)
            .expect("buffer");
        self.gpu.upload(&b, 0, bytes).expect("upload");
        b
    }

    /// A zero-filled device buffer of `n` f32.
    pub fn zeros(&self, n: usize) -> GpuBuffer {
        self.upload_f32(&vec![0.0; n])
    }

    /// The f32 contents of `b`.
    pub fn download_f32(&self, b: &GpuBuffer) -> Vec<f32> {
        let mut out = vec![0f32; (b.size() / 4) as usize];
        self.gpu
            .download(b, 0, bytemuck::cast_slice_mut(&mut out))
            .expect("download");
        out
    }

    /// The u32 contents of `b`.
    pub fn download_u32(&self, b: &GpuBuffer) -> Vec<u32> {
        let mut out = vec![0u32; (b.size() / 4) as usize];
        self.gpu
            .download(b, 0, bytemuck::cast_slice_mut(&mut out))
            .expect("download");
        out
    }
}

/// Takes the device for one test, or `None` when RAWRXD_SKIP_VULKAN=1.
pub fn harness() -> Option<Harness> {
    harness_with(false)
}

/// As `harness`, with the validation layer's synchronization checks on when this call creates the
/// binary's context (they are slow: the whole-engine test uses them, the kernel sweeps do not).
/// `RAWRXD_SYNC_VALIDATION=1` turns them on for every binary.
pub fn harness_with(sync: bool) -> Option<Harness> {
    if std::env::var("RAWRXD_SKIP_VULKAN").as_deref() == Ok("1") {
        eprintln!("RAWRXD_SKIP_VULKAN=1: Vulkan test skipped");
        return None;
    }
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let gpu = GPU
        .get_or_init(|| {
            let _ = env_logger::builder().is_test(true).try_init();
            let validation = match std::env::var("RAWRXD_VULKAN_VALIDATION").as_deref() {
                Ok("0") => Validation::Off,
                _ => Validation::Required,
            };
            let mut opts = GpuOptions::from_env();
            let sync_validation = sync || std::env::var("RAWRXD_SYNC_VALIDATION").as_deref() == Ok("1");
            opts.instance = InstanceOptions { validation, sync_validation };
            opts.device.allow_cpu = true;
            opts.cache_dir = Some(std::env::temp_dir().join("rawrxd-test-pipeline-cache"));
            let gpu = Gpu::new(&opts).unwrap_or_else(|e| {
                panic!("no usable Vulkan device ({e}); set RAWRXD_SKIP_VULKAN=1 to skip the Vulkan tests")
            });
            let c = gpu.caps();
            // Written to the raw stdout handle so it shows even when the test harness captures
            // output: CI greps for this line to prove the Vulkan tests ran on a device.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stdout(),
                "vulkan device: {} ({}, {}; subgroup {}; validation {})",
                c.name,
                c.driver_name,
                c.driver_info,
                c.subgroup.size,
                gpu.instance().validating()
            );
            gpu
        })
        .clone();
    // Errors from an earlier, failed test must not fail this one.
    let _ = gpu.take_validation_errors();
    Some(Harness { gpu, _guard: guard })
}

/// Deterministic pseudo-random numbers (xorshift64*), independent of any crate's algorithm.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Normalised mean squared error sum((a-b)^2) / sum(b^2).
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let mut num = 0f64;
    let mut den = 0f64;
    for (g, w) in got.iter().zip(want) {
        assert!(g.is_finite(), "non-finite output {g} (want {w})");
        num += (*g as f64 - *w as f64).powi(2);
        den += (*w as f64).powi(2);
    }
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

/// Asserts nmse(got, want) <= bound, naming `what`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], bound: f64) {
    let e = nmse(got, want);
    assert!(
        e <= bound,
        "{what}: nmse {e:.3e} > {bound:.1e}; first values got {:?} want {:?}",
        &got[..got.len().min(6)],
        &want[..want.len().min(6)]
    );
}

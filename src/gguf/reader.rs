//! The GGUF reader: parse and validate the header, then hand out zero-copy views of tensor data.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::{GgufError, MetaValue, ValueType, DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_DIMS};
use crate::quant::GgmlType;

/// One tensor's description; its bytes are reached through [`GgufFile::tensor_data`].
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the row length (contiguous), `dims[1]` the row count...
    pub dims: Vec<u64>,
    /// Element type.
    pub ty: GgmlType,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Total number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Elements per row (`dims[0]`).
    pub fn row_len(&self) -> usize {
        self.dims[0] as usize
    }

    /// Number of rows (product of all dimensions but the first).
    pub fn n_rows(&self) -> usize {
        self.dims[1..].iter().product::<u64>() as usize
    }

    /// Shape rendered like llama.cpp does: `[576, 49152]`.
    pub fn shape_string(&self) -> String {
        let d: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
        format!("[{}]", d.join(", "))
    }
}

enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// An opened, validated GGUF file. Tensor data is borrowed straight from the memory map.
pub struct GgufFile {
    path: PathBuf,
    backing: Backing,
    version: u32,
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and validates `path` (memory-mapped).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| GgufError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process. Another process truncating the
        // file while it is mapped would make reads fault; that is the usual contract of mmap-based
        // model loaders (llama.cpp's included) and is documented for users.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::parse(path, Backing::Mapped(mmap))
    }

    /// Parses a GGUF image held in memory; `label` names it in errors.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::parse(label.into(), Backing::Owned(bytes))
    }

    fn parse(path: PathBuf, backing: Backing) -> Result<GgufFile, GgufError> {
        let bytes = backing.bytes();
        let mut c = Cursor {
            buf: bytes,
            pos: 0,
            path: &path,
        };
        let magic = c.take(4, "magic")?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic {
                path: path.clone(),
                found: magic.to_vec(),
            });
        }
        let version = c.u32("version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::BadVersion {
                path: path.clone(),
                version,
            });
        }
        let n_tensors = c.count("tensor count", 24)?;
        let n_kv = c.count("metadata count", 13)?;

        let mut metadata = Vec::with_capacity(n_kv);
        let mut meta_index = HashMap::with_capacity(n_kv);
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let at = c.pos as u64;
            let type_id = c.u32("metadata value type")?;
            let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                path: path.clone(),
                offset: at,
                key: key.clone(),
                type_id,
            })?;
            let value = c.value(ty, &key, 0)?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::Duplicate {
                    path: path.clone(),
                    what: "metadata key",
                    name: key,
                });
            }
            metadata.push((key, value));
        }

        let alignment = match meta_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => {
                let v = &metadata[i].1;
                match v {
                    MetaValue::U32(a) if *a > 0 && a.is_power_of_two() => *a as u64,
                    _ => {
                        return Err(GgufError::Metadata {
                            path: path.clone(),
                            key: "general.alignment".into(),
                            msg: format!("must be a u32 power of two, found {}", v.summary()),
                        })
                    }
                }
            }
        };

        let mut tensors = Vec::with_capacity(n_tensors);
        let mut tensor_index = HashMap::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let t = c.tensor_info()?;
            if tensor_index.insert(t.name.clone(), tensors.len()).is_some() {
                return Err(GgufError::Duplicate {
                    path: path.clone(),
                    what: "tensor",
                    name: t.name,
                });
            }
            tensors.push(t);
        }
        let data_offset = (c.pos as u64).next_multiple_of(alignment);
        let file_len = bytes.len() as u64;
        let bad = |t: &TensorInfo, msg: String| GgufError::BadTensor {
            path: path.clone(),
            tensor: t.name.clone(),
            msg,
        };
        for t in &tensors {
            if t.offset % alignment != 0 {
                return Err(bad(
                    t,
                    format!(
                        "data offset {} is not a multiple of the alignment {alignment}",
                        t.offset
                    ),
                ));
            }
            let end = data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.n_bytes));
            match end {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(bad(
                        t,
                        format!(
                            "data [{}, +{}) lies past the end of the file ({file_len} bytes; data section starts at {data_offset})",
                            t.offset, t.n_bytes
                        ),
                    ))
                }
            }
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| tensors[i].offset);
        for w in order.windows(2) {
            let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
            if a.offset + a.n_bytes > b.offset {
                return Err(bad(
                    b,
                    format!(
                        "data at offset {} overlaps tensor '{}' ({} + {} bytes)",
                        b.offset, a.name, a.offset, a.n_bytes
                    ),
                ));
            }
        }

        Ok(GgufFile {
            path,
            backing,
            version,
            metadata,
            meta_index,
            tensors,
            tensor_index,
            alignment,
            data_offset,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Data alignment in bytes.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset where the data section starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Size of the whole file in bytes.
    pub fn file_size(&self) -> u64 {
        self.backing.bytes().len() as u64
    }

    /// The whole file image.
    pub fn bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// The metadata value under `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn meta_err(&self, key: &str, msg: impl Into<String>) -> GgufError {
        GgufError::Metadata {
            path: self.path.clone(),
            key: key.to_string(),
            msg: msg.into(),
        }
    }

    fn require(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.get(key).ok_or_else(|| self.meta_err(key, "missing"))
    }

    /// A required string.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str()
            .ok_or_else(|| self.meta_err(key, format!("expected a string, found {v:?}")))
    }

    /// A required non-negative integer of any width.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| {
            self.meta_err(
                key,
                format!("expected a non-negative integer, found {}", v.summary()),
            )
        })
    }

    /// A required integer that fits in u32.
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        let v = self.get_u64(key)?;
        u32::try_from(v).map_err(|_| self.meta_err(key, format!("{v} does not fit in u32")))
    }

    /// A required number, as f32.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        v.as_f64()
            .map(|x| x as f32)
            .ok_or_else(|| self.meta_err(key, format!("expected a number, found {}", v.summary())))
    }

    /// A required boolean.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        let v = self.require(key)?;
        v.as_bool()
            .ok_or_else(|| self.meta_err(key, format!("expected a bool, found {}", v.summary())))
    }

    /// A required array.
    pub fn get_array(&self, key: &str) -> Result<&[MetaValue], GgufError> {
        let v = self.require(key)?;
        v.as_array()
            .ok_or_else(|| self.meta_err(key, format!("expected an array, found {}", v.summary())))
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.get_str("general.architecture")
    }

    /// All tensors in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of tensor `t` (which must come from this file), borrowed from the map.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + t.offset) as usize;
        &self.backing.bytes()[start..start + t.n_bytes as usize]
    }

    /// Total number of parameters (elements of every tensor).
    pub fn n_params(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements()).sum()
    }

    /// Bytes of all tensor data.
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_bytes).sum()
    }

    /// Bits per weight over all tensors (tensor bytes × 8 / parameters).
    pub fn bits_per_weight(&self) -> f64 {
        let n = self.n_params();
        if n == 0 {
            0.0
        } else {
            self.tensor_bytes() as f64 * 8.0 / n as f64
        }
    }
}

/// A bounds-checked little-endian reader over the file image.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                path: self.path.to_path_buf(),
                offset: self.pos as u64,
                what: what.to_string(),
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A u64 count of items each taking at least `min_item` bytes, checked against what remains.
    fn count(&mut self, what: &str, min_item: u64) -> Result<usize, GgufError> {
        let at = self.pos as u64;
        let n = self.u64(what)?;
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(GgufError::Absurd {
                path: self.path.to_path_buf(),
                offset: at,
                what: what.to_string(),
                value: n,
                why: format!(
                    "each item takes at least {min_item} bytes and only {} bytes remain",
                    self.remaining()
                ),
            });
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let at = self.pos as u64;
        let len = self.u64(what)?;
        if len > self.remaining() {
            return Err(GgufError::Absurd {
                path: self.path.to_path_buf(),
                offset: at,
                what: format!("length of {what}"),
                value: len,
                why: format!("only {} bytes remain in the file", self.remaining()),
            });
        }
        let start = self.pos as u64;
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| GgufError::InvalidUtf8 {
            path: self.path.to_path_buf(),
            offset: start,
            what: what.to_string(),
        })
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<MetaValue, GgufError> {
        let what = format!("value of '{key}'");
        Ok(match ty {
            ValueType::U8 => MetaValue::U8(self.array::<1>(&what)?[0]),
            ValueType::I8 => MetaValue::I8(self.array::<1>(&what)?[0] as i8),
            ValueType::U16 => MetaValue::U16(u16::from_le_bytes(self.array(&what)?)),
            ValueType::I16 => MetaValue::I16(i16::from_le_bytes(self.array(&what)?)),
            ValueType::U32 => MetaValue::U32(u32::from_le_bytes(self.array(&what)?)),
            ValueType::I32 => MetaValue::I32(i32::from_le_bytes(self.array(&what)?)),
            ValueType::U64 => MetaValue::U64(u64::from_le_bytes(self.array(&what)?)),
            ValueType::I64 => MetaValue::I64(i64::from_le_bytes(self.array(&what)?)),
            ValueType::F32 => MetaValue::F32(f32::from_le_bytes(self.array(&what)?)),
            ValueType::F64 => MetaValue::F64(f64::from_le_bytes(self.array(&what)?)),
            ValueType::Bool => {
                let at = self.pos as u64;
                match self.array::<1>(&what)?[0] {
                    0 => MetaValue::Bool(false),
                    1 => MetaValue::Bool(true),
                    b => {
                        return Err(GgufError::Absurd {
                            path: self.path.to_path_buf(),
                            offset: at,
                            what,
                            value: b as u64,
                            why: "a bool must be 0 or 1".into(),
                        })
                    }
                }
            }
            ValueType::String => MetaValue::String(self.string(&what)?),
            ValueType::Array => {
                let at = self.pos as u64;
                let type_id = self.u32(&what)?;
                let elem =
                    ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                        path: self.path.to_path_buf(),
                        offset: at,
                        key: key.to_string(),
                        type_id,
                    })?;
                if elem == ValueType::Array && depth >= 1 {
                    return Err(GgufError::Absurd {
                        path: self.path.to_path_buf(),
                        offset: at,
                        what,
                        value: depth as u64 + 1,
                        why: "arrays nest at most two deep".into(),
                    });
                }
                let n = self.count(&format!("element count of '{key}'"), elem.min_size())?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                MetaValue::Array(elem, items)
            }
        })
    }

    fn tensor_info(&mut self) -> Result<TensorInfo, GgufError> {
        let name = self.string("tensor name")?;
        let at = self.pos as u64;
        let n_dims = self.u32("tensor dimension count")?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(GgufError::BadTensor {
                path: self.path.to_path_buf(),
                tensor: name,
                msg: format!("{n_dims} dimensions at byte {at} (must be 1 to {MAX_DIMS})"),
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64("tensor dimension")?);
        }
        let type_id = self.u32("tensor type")?;
        let offset = self.u64("tensor data offset")?;
        let bad = |msg: String| GgufError::BadTensor {
            path: self.path.to_path_buf(),
            tensor: name.clone(),
            msg,
        };
        if dims.contains(&0) {
            return Err(bad(format!("has a zero dimension {dims:?}")));
        }
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= (1u64 << 48))
            .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
        let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
            path: self.path.to_path_buf(),
            tensor: name.clone(),
            type_id,
        })?;
        let row_bytes = ty.row_bytes(dims[0] as usize).ok_or_else(|| {
            bad(format!(
                "row length {} is not a multiple of {}'s block size {}",
                dims[0],
                ty,
                ty.block_size()
            ))
        })? as u64;
        let n_bytes = row_bytes
            .checked_mul(n_elements / dims[0])
            .ok_or_else(|| bad("byte size overflows".into()))?;
        Ok(TensorInfo {
            name,
            dims,
            ty,
            offset,
            n_bytes,
        })
    }
}

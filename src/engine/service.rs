//! [`ModelService`]: a loaded model behind a [`Scheduler`], taking text requests — what the
//! in-process pool target and `rawrxd serve` share.
//!
//! It owns the tokenizer and chat template next to the scheduler, turns a [`TextRequest`] into
//! prompt tokens and sampling settings, and submits it. Prompts are tokenized as llama-server
//! does: BOS/EOS as the model asks (`add_special`), special-token texts such as `<|im_start|>`
//! recognised (`parse_special`). Sampling defaults are llama.cpp's ([`SamplerParams::default`]);
//! a request without a seed gets a random one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::batch::load_batch_engine;
use super::scheduler::{GenRequest, RequestHandle, Scheduler, SchedulerConfig, SubmitError};
use super::{Backend, BatchEngine};
use crate::gguf::GgufFile;
use crate::model::chat::ChatTemplate;
use crate::model::detokenize::Detokenizer;
use crate::model::tokenizer::Tokenizer;
use crate::model::SamplerParams;
use crate::Result;

/// How to load a model for serving.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServiceConfig {
    /// Backend to run on.
    #[serde(serialize_with = "backend_name")]
    pub backend: Backend,
    /// KV cache positions per sequence.
    pub n_ctx: usize,
    /// Sequences served at once (KV cache slots).
    pub slots: usize,
    /// CPU threads (`None`: one per core).
    pub threads: Option<usize>,
    /// Queue, batch and prefill settings.
    pub scheduler: SchedulerConfig,
}

fn backend_name<S: serde::Serializer>(b: &Backend, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(match b {
        Backend::Cpu => "cpu",
        Backend::Vulkan => "vulkan",
        Backend::Auto => "auto",
    })
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            backend: Backend::Auto,
            n_ctx: 2048,
            slots: 4,
            threads: None,
            scheduler: SchedulerConfig::default(),
        }
    }
}

/// What to complete.
#[derive(Clone, Debug, PartialEq)]
pub enum TextPrompt {
    /// Raw text, tokenized as is.
    Text(String),
    /// A conversation of (role, content), rendered with the model's chat template.
    Chat(Vec<(String, String)>),
}

/// A generation request in text.
#[derive(Clone, Debug, PartialEq)]
pub struct TextRequest {
    pub prompt: TextPrompt,
    /// Upper bound on generated tokens.
    pub max_tokens: usize,
    /// Sampling overrides; `None` keeps llama.cpp's default.
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    /// Seed of the draw; `None`: a random one.
    pub seed: Option<u64>,
    /// Keep going past end-of-generation tokens.
    pub ignore_eos: bool,
    /// Limit from submission to the end; `None`: the scheduler's default.
    pub timeout: Option<Duration>,
}

impl TextRequest {
    /// A request for `max_tokens` tokens with default sampling.
    pub fn new(prompt: TextPrompt, max_tokens: usize) -> TextRequest {
        TextRequest {
            prompt,
            max_tokens,
            temperature: None,
            top_p: None,
            top_k: None,
            min_p: None,
            repeat_penalty: None,
            seed: None,
            ignore_eos: false,
            timeout: None,
        }
    }

    /// The sampler settings: llama.cpp's defaults with this request's overrides.
    pub fn sampling(&self) -> SamplerParams {
        let d = SamplerParams::default();
        SamplerParams {
            temp: self.temperature.unwrap_or(d.temp),
            top_p: self.top_p.unwrap_or(d.top_p),
            top_k: self.top_k.unwrap_or(d.top_k),
            min_p: self.min_p.unwrap_or(d.min_p),
            repeat_penalty: self.repeat_penalty.unwrap_or(d.repeat_penalty),
            seed: self.seed.unwrap_or_else(rand::random),
            ..d
        }
    }
}

/// A submitted text request.
#[derive(Debug)]
pub struct Submitted {
    /// Its events.
    pub handle: RequestHandle,
    /// Tokens of its prompt.
    pub prompt_tokens: usize,
}

/// A model loaded for serving; see the module header.
pub struct ModelService {
    scheduler: Scheduler,
    tokenizer: Arc<Tokenizer>,
    chat: ChatTemplate,
    id: String,
    path: PathBuf,
}

impl std::fmt::Debug for ModelService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelService")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("scheduler", &self.scheduler)
            .finish()
    }
}

impl ModelService {
    /// Loads the model at `path` as `config` says and starts its scheduler. The model's id is
    /// its file name without `.gguf`.
    pub fn load(path: impl AsRef<Path>, config: &ServiceConfig) -> Result<ModelService> {
        let path = path.as_ref();
        let file = Arc::new(GgufFile::open(path)?);
        let tokenizer = Arc::new(Tokenizer::from_gguf(&file)?);
        let chat = ChatTemplate::from_gguf(&file);
        let engine = load_batch_engine(
            config.backend,
            file,
            config.n_ctx,
            config.slots,
            config.threads,
        )?;
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let id = id.strip_suffix(".gguf").unwrap_or(&id).to_string();
        let mut service = ModelService::new(engine, tokenizer, chat, id, config.scheduler.clone())?;
        service.path = path.to_path_buf();
        Ok(service)
    }

    /// Serves an engine already loaded, with its tokenizer and chat template, as model `id`.
    pub fn new(
        engine: Box<dyn BatchEngine>,
        tokenizer: Arc<Tokenizer>,
        chat: ChatTemplate,
        id: String,
        config: SchedulerConfig,
    ) -> Result<ModelService> {
        let eog = tokenizer.clone();
        let scheduler = Scheduler::start(engine, Arc::new(move |t| eog.is_eog(t)), config)?;
        Ok(ModelService {
            scheduler,
            tokenizer,
            chat,
            path: PathBuf::from(&id),
            id,
        })
    }

    /// The prompt's tokens.
    pub fn encode(&self, prompt: &TextPrompt) -> std::result::Result<Vec<u32>, SubmitError> {
        let text = match prompt {
            TextPrompt::Text(t) => std::borrow::Cow::Borrowed(t.as_str()),
            TextPrompt::Chat(messages) => {
                let rendered = self
                    .chat
                    .render(messages.iter().map(|(r, c)| (r.as_str(), c.as_str())))
                    .map_err(SubmitError::Invalid)?;
                std::borrow::Cow::Owned(rendered)
            }
        };
        self.tokenizer
            .encode(&text, true, true)
            .map_err(|e| SubmitError::Invalid(e.to_string()))
    }

    /// Tokenizes and submits `request`.
    pub fn submit(&self, request: &TextRequest) -> std::result::Result<Submitted, SubmitError> {
        let prompt = self.encode(&request.prompt)?;
        let prompt_tokens = prompt.len();
        let handle = self.scheduler.submit(GenRequest {
            prompt,
            max_tokens: request.max_tokens,
            sampling: request.sampling(),
            ignore_eos: request.ignore_eos,
            timeout: request.timeout,
        })?;
        Ok(Submitted {
            handle,
            prompt_tokens,
        })
    }

    /// A fresh detokenizer for one response.
    pub fn detokenizer(&self) -> Detokenizer {
        Detokenizer::new(self.tokenizer.clone())
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    /// The model's id (file name without `.gguf`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

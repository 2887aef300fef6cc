//! Chat templates: turning a conversation into the prompt text a chat model was trained on.
//!
//! Only the ChatML form is rendered (`<|im_start|>role\ncontent<|im_end|>\n` per message, then
//! `<|im_start|>assistant\n`), the way llama.cpp renders its built-in `chatml` template without
//! a Jinja engine. It is chosen when the model's `tokenizer.chat_template` uses `<|im_start|>`
//! (SmolLM2, Qwen2 and other ChatML models) or when the model has no template (llama.cpp's
//! default). Limitation: the Jinja template itself is not evaluated, so anything it adds beyond
//! the plain ChatML frame — a default system prompt (SmolLM2's "You are a helpful AI assistant
//! named SmolLM…"), tool calls, per-role quirks — is not reproduced; other template families
//! (Llama 3, Mistral, Gemma, …) are reported as unsupported.

use crate::gguf::GgufFile;

/// The GGUF key holding a model's Jinja chat template.
pub const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";

/// How to render a conversation for a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n` … `<|im_start|>assistant\n`.
    ChatMl,
    /// A template rawrxd cannot render; the text is the reason, for error messages.
    Unsupported(String),
}

impl ChatTemplate {
    /// The template for the model in `f` (see the module header for the choice).
    pub fn from_gguf(f: &GgufFile) -> ChatTemplate {
        match f.get_str(CHAT_TEMPLATE_KEY) {
            Ok(t) => ChatTemplate::from_jinja(t),
            Err(_) if f.get(CHAT_TEMPLATE_KEY).is_none() => ChatTemplate::ChatMl,
            Err(e) => ChatTemplate::Unsupported(format!("{CHAT_TEMPLATE_KEY}: {e}")),
        }
    }

    /// The renderer matching a Jinja template's text.
    pub fn from_jinja(template: &str) -> ChatTemplate {
        if template.contains("<|im_start|>") {
            ChatTemplate::ChatMl
        } else {
            ChatTemplate::Unsupported(
                "the model's chat template is not ChatML; only ChatML is supported".into(),
            )
        }
    }

    /// The prompt for `messages` (role, content), ending with the opening of the assistant's
    /// turn. Errors with the reason when the template is unsupported.
    pub fn render<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<String, String> {
        match self {
            ChatTemplate::ChatMl => {
                let mut out = String::new();
                for (role, content) in messages {
                    out.push_str("<|im_start|>");
                    out.push_str(role);
                    out.push('\n');
                    out.push_str(content);
                    out.push_str("<|im_end|>\n");
                }
                out.push_str("<|im_start|>assistant\n");
                Ok(out)
            }
            ChatTemplate::Unsupported(why) => Err(why.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_frames_every_message_and_opens_the_assistant_turn() {
        let t = ChatTemplate::from_jinja("{% for m in messages %}<|im_start|>{{m.role}}…");
        let text = t.render([("system", "Be brief."), ("user", "Hi")]).unwrap();
        assert_eq!(
            text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        let llama3 = ChatTemplate::from_jinja("<|start_header_id|>{{ role }}<|end_header_id|>");
        assert!(llama3
            .render([("user", "Hi")])
            .unwrap_err()
            .contains("ChatML"));
    }
}

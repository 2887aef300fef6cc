//! `rawrxd tokenize -m MODEL -p TEXT`: token ids of a text, printed like llama.cpp's
//! `llama-tokenize`, so the two can be diffed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use rawrxd::gguf::GgufFile;
use rawrxd::model::tokenizer::Tokenizer;

/// Arguments of `rawrxd tokenize`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["prompt", "file"])))]
pub struct TokenizeArgs {
    /// The GGUF model whose tokenizer to use.
    #[arg(short, long)]
    pub model: PathBuf,
    /// The text to tokenize.
    #[arg(short, long)]
    pub prompt: Option<String>,
    /// Read the text from this file, verbatim.
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Print the ids as one list, `[1, 2, 3]`, instead of `id -> 'piece'` lines.
    #[arg(long)]
    pub ids: bool,
    /// Do not add BOS/EOS even if the model asks for them.
    #[arg(long)]
    pub no_bos: bool,
    /// Treat control-token texts such as `<|im_start|>` as plain text.
    #[arg(long)]
    pub no_parse_special: bool,
    /// Process escapes (`\n`, `\r`, `\t`, `\'`, `\"`, `\\`) in the text, as llama-tokenize does
    /// by default.
    #[arg(short, long)]
    pub escape: bool,
}

/// Tokenizes the text of `args` and prints the result.
pub fn run(args: &TokenizeArgs) -> anyhow::Result<()> {
    let mut text = match (&args.prompt, &args.file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?
        }
        (None, None) => anyhow::bail!("give the text with -p/--prompt or -f/--file"),
    };
    if args.escape {
        text = process_escapes(&text);
    }
    let f = GgufFile::open(&args.model)?;
    let tok = Tokenizer::from_gguf(&f)?;
    // llama-tokenize passes add_special = "the model adds BOS" and not --no-bos.
    let add_special = tok.adds_bos() && !args.no_bos;
    let ids = tok.encode(&text, add_special, !args.no_parse_special)?;

    let mut out = std::io::stdout().lock();
    if args.ids {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        writeln!(out, "[{}]", list.join(", "))?;
    } else {
        for &id in &ids {
            write!(out, "{id:6} -> '")?;
            out.write_all(tok.token_bytes(id))?;
            writeln!(out, "'")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// llama.cpp's `string_process_escapes` for the common escapes; others are kept as written.
fn process_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\'') => out.push('\''),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::process_escapes;

    #[test]
    fn escapes() {
        assert_eq!(process_escapes(r"a\nb\tc\\d\q"), "a\nb\tc\\d\\q");
    }
}

//! One wire format per API family. OpenAI, xAI and OpenAI-compatible servers share one.

mod anthropic;
mod gemini;
mod ollama;
mod openai;

pub(crate) use anthropic::Anthropic;
pub(crate) use gemini::Gemini;
pub(crate) use ollama::Ollama;
pub(crate) use openai::OpenAiStyle;

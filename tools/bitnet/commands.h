// The subcommands of the bitnet executable; main.cpp dispatches on the first argument.
#pragma once

namespace bitnet::cli {

int cmd_generate(int argc, char** argv);    // default: bitnet -m M -p TEXT (and -cnv chat)
int cmd_logits(int argc, char** argv);      // bitnet logits -m M --tokens 1,2,3 -o out.npy
int cmd_perplexity(int argc, char** argv);  // bitnet perplexity -m M -f FILE -c N
int cmd_tokenize(int argc, char** argv);    // bitnet tokenize -m M | --tokenizer F
int cmd_bench(int argc, char** argv);       // bitnet bench (llama-bench compatible)
int cmd_dummy(int argc, char** argv);       // bitnet dummy --shape S --type T -o FILE
int cmd_quantize(int argc, char** argv);    // bitnet quantize IN OUT TYPE
int cmd_pull(int argc, char** argv);        // bitnet pull ORG/NAME[:TAG]
int cmd_show(int argc, char** argv);        // bitnet show MODEL
int cmd_convert(int argc, char** argv);     // bitnet convert HF_DIR -o OUT.gguf
int cmd_serve(int argc, char** argv);       // bitnet serve -m M (OpenAI-compatible HTTP server)

}  // namespace bitnet::cli

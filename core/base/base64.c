/* base64.c -- RFC 4648 base64; see base64.h.
 *
 * Four characters carry three bytes.  The decoder maps each character to
 * one more than its 6-bit value through a table that holds 0 for every byte
 * outside the alphabet, so one lookup both validates and converts.
 */
#include "base64.h"

static const char enc[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 1 + the 6-bit value of each alphabet character; 0 for every other byte
 * ("=" included: padding is handled by its position, not by a value). */
static const uint8_t dec[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
    ['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
    ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
    ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
    ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
    ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
    ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

size_t base64_encode(const uint8_t *src, size_t n, char *out)
{
    char *o = out;
    size_t i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        *o++ = enc[v >> 18];
        *o++ = enc[(v >> 12) & 63];
        *o++ = enc[(v >> 6) & 63];
        *o++ = enc[v & 63];
    }
    if (i < n) {
        /* One or two bytes left: two or three characters, then padding. */
        uint32_t v = (uint32_t)src[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)src[i + 1] << 8;
        *o++ = enc[v >> 18];
        *o++ = enc[(v >> 12) & 63];
        *o++ = i + 1 < n ? enc[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return (size_t)(o - out);
}

long base64_decode(const char *src, size_t n, uint8_t *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)src;

    if (n % 4 != 0)
        return -1;
    if (n == 0)
        return 0;
    /* The last quantum may end in "=" or "=="; nothing else may. */
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    size_t olen = n / 4 * 3 - pad;
    if (olen > cap)
        return -1;

    size_t full = n - (pad ? 4 : 0);  /* characters in unpadded quanta */
    uint8_t *o = out;
    for (size_t i = 0; i < full; i += 4) {
        uint8_t a = dec[s[i]], b = dec[s[i + 1]], c = dec[s[i + 2]],
                d = dec[s[i + 3]];
        if (!a || !b || !c || !d)
            return -1;
        a--, b--, c--, d--;
        *o++ = (uint8_t)(a << 2 | b >> 4);
        *o++ = (uint8_t)(b << 4 | c >> 2);
        *o++ = (uint8_t)(c << 6 | d);
    }
    if (pad) {
        /* "xx==" carries one byte, "xxx=" two. */
        const unsigned char *q = s + full;
        uint8_t a = dec[q[0]], b = dec[q[1]], c = pad == 1 ? dec[q[2]] : 1;
        if (!a || !b || !c)
            return -1;
        a--, b--, c--;
        *o++ = (uint8_t)(a << 2 | b >> 4);
        if (pad == 1)
            *o++ = (uint8_t)(b << 4 | c >> 2);
    }
    return (long)(o - out);
}

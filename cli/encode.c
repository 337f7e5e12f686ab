/* encode.c - hex, base64 and JSON text for `mqctl recv --format`, streamed in chunks. */
#include <stdio.h>

#include "mqctl.h"

/* Output goes through a small buffer: a 1 GiB message must not need a 2 GiB
 * hex copy. */
#define CHUNK 3072 /* a multiple of 3, so base64 chunks need no padding */

int hex_write(FILE *f, const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char out[2 * CHUNK];
	while (n > 0) {
		size_t k = n < CHUNK ? n : CHUNK;
		for (size_t i = 0; i < k; i++) {
			out[2 * i] = digits[p[i] >> 4];
			out[2 * i + 1] = digits[p[i] & 15];
		}
		if (fwrite(out, 1, 2 * k, f) != 2 * k)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

int base64_write(FILE *f, const unsigned char *p, size_t n)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char out[CHUNK / 3 * 4];
	while (n > 0) {
		size_t k = n < CHUNK ? n : CHUNK, o = 0;
		for (size_t i = 0; i < k; i += 3) {
			unsigned v = (unsigned)p[i] << 16;
			if (i + 1 < k)
				v |= (unsigned)p[i + 1] << 8;
			if (i + 2 < k)
				v |= p[i + 2];
			out[o++] = alphabet[(v >> 18) & 63];
			out[o++] = alphabet[(v >> 12) & 63];
			out[o++] = i + 1 < k ? alphabet[(v >> 6) & 63] : '=';
			out[o++] = i + 2 < k ? alphabet[v & 63] : '=';
		}
		if (fwrite(out, 1, o, f) != o)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

int json_text_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
		size_t len = c < 0x80                 ? 1
		             : c >= 0xc2 && c <= 0xdf ? 2
		             : c >= 0xe0 && c <= 0xef ? 3
		             : c >= 0xf0 && c <= 0xf4 ? 4
		                                      : 0;
		if (len == 0 || i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		/* overlong 3- and 4-byte forms, UTF-16 surrogates, above U+10FFFF */
		if (len == 3 && ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0)))
			return 0;
		if (len == 4 && ((c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] >= 0x90)))
			return 0;
		/* C1 controls U+0080..U+009F (0xc2 0x80..0x9f) are controls too */
		if (len == 2 && c == 0xc2 && p[i + 1] < 0xa0)
			return 0;
		i += len;
	}
	return 1;
}

int json_text_write(FILE *f, const unsigned char *p, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '"' && p[i] != '\\')
			continue;
		if (fwrite(p + start, 1, i - start, f) != i - start || fputc('\\', f) == EOF)
			return -1;
		start = i; /* the quote or backslash itself goes out with the next run */
	}
	return fwrite(p + start, 1, n - start, f) == n - start ? 0 : -1;
}

/* fmt_esc(): a printf result as one line for tests/unit/fmt_ref.c and
 * test_fmt.c: backslash, control and non-ASCII bytes as \xHH. Formats by
 * hand, so that it does not depend on the printf under test. */
static void
fmt_esc(char *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p >= 0x7f || *p == '\\') {
			*out++ = '\\';
			*out++ = 'x';
			*out++ = hex[*p >> 4];
			*out++ = hex[*p & 15];
		} else {
			*out++ = (char)*p;
		}
	}
	*out = '\0';
}

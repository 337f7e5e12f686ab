/* web_assets.h - the dashboard's files, built into mqbroker (broker/embed_web.cmake). */
#ifndef MQBROKER_WEB_ASSETS_H
#define MQBROKER_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path; /* "/index.html", ... */
	const unsigned char *data;
	size_t len;
};

extern const struct web_asset web_assets[];
extern const size_t web_assets_count;

#endif /* MQBROKER_WEB_ASSETS_H */

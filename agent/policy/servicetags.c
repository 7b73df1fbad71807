// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "escape.h"
#include "servicetags.h"

static json_object *find_tag(json_object *values, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(values); i++) {
		json_object *v = json_object_array_get_idx(values, i), *n;

		if (json_object_object_get_ex(v, "name", &n) && json_object_is_type(n, json_type_string) &&
		    !strcmp(json_object_get_string(n), name))
			return v;
	}
	return NULL;
}

static int add_prefixes(json_object *tag, const char *name, int (*fn)(const struct tg_cidr *, void *),
			void *arg, char *err, size_t errlen)
{
	json_object *props, *prefixes;

	if (!json_object_object_get_ex(tag, "properties", &props) ||
	    !json_object_object_get_ex(props, "addressPrefixes", &prefixes) ||
	    !json_object_is_type(prefixes, json_type_array)) {
		snprintf(err, errlen, "service tag %s has no properties.addressPrefixes list", name);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(prefixes); i++) {
		const char *text = json_object_get_string(json_object_array_get_idx(prefixes, i));
		struct tg_cidr cidr;
		int ret;

		if (!text || policy_parse_cidr(text, &cidr)) {
			char quoted[96];

			/* the file's own text: escaped like every outside string (escape.h) */
			tg_escape(quoted, sizeof(quoted), text ? text : "", text ? strlen(text) : 0,
				  TG_ESC_QUOTES);
			snprintf(err, errlen, "service tag %s: invalid prefix \"%s\"", name, quoted);
			return -EINVAL;
		}
		ret = fn(&cidr, arg);
		if (ret)
			return ret;
	}
	return 0;
}

int servicetags_load(const char *file, const struct tg_strlist *tags,
		     int (*fn)(const struct tg_cidr *cidr, void *arg), void *arg, char *err,
		     size_t errlen)
{
	json_object *root, *values;
	int ret = 0;

	if (access(file, R_OK) < 0) {
		snprintf(err, errlen, "cannot read service tags file %s: %s", file, strerror(errno));
		return -errno;
	}
	root = json_object_from_file(file);
	if (!root) {
		snprintf(err, errlen, "service tags file %s: %s", file, json_util_get_last_err());
		return -EINVAL;
	}
	if (!json_object_object_get_ex(root, "values", &values) ||
	    !json_object_is_type(values, json_type_array)) {
		snprintf(err, errlen, "service tags file %s: no \"values\" list (not a ServiceTags_*.json file?)",
			 file);
		json_object_put(root);
		return -EINVAL;
	}
	for (size_t i = 0; i < tags->n && !ret; i++) {
		json_object *tag = find_tag(values, tags->v[i]);

		if (!tag) {
			snprintf(err, errlen, "service tag %s is not in %s", tags->v[i], file);
			ret = -ENOENT;
			break;
		}
		ret = add_prefixes(tag, tags->v[i], fn, arg, err, errlen);
	}
	json_object_put(root);
	return ret;
}

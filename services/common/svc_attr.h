/* Compiler attributes shared by the library and the services. SVC_MUST_CHECK
 * marks functions whose failure must be handled (a write that would otherwise
 * commit without its statement or event): ignoring their result does not
 * compile (-Werror). */
#ifndef SVC_ATTR_H
#define SVC_ATTR_H

#define SVC_MUST_CHECK __attribute__((warn_unused_result))

#endif

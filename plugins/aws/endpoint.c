/* The services the plugins speak to and their public endpoints. */
#include <stdio.h>
#include <string.h>

#include "aws.h"

const evbus_aws_service evbus_aws_sqs = {"SQS", "sqs", "application/x-amz-json-1.0"};
const evbus_aws_service evbus_aws_eventbridge = {"EventBridge", "events",
                                                 "application/x-amz-json-1.1"};
const evbus_aws_service evbus_aws_dynamodb = {"DynamoDB", "dynamodb", "application/x-amz-json-1.0"};

int evbus_aws_default_endpoint(const evbus_aws_service *svc, const char *region, char *out,
                               size_t len) {
    if (!region || !*region)
        return -1;
    /* The China partition has its own domain. */
    const char *domain = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    int n = snprintf(out, len, "https://%s.%s.%s", svc->signing_name, region, domain);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

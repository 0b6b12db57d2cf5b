"""Knowledge bases: OpenAI's Files and Vector Stores APIs on Milvus, and the
search behind the Responses API's ``file_search`` tool (built in the app
lifespan from the ``knowledge:`` section; ``gateway.knowledge.build``)."""

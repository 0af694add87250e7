"""The acceptance suite's machinery: services, the Processor process, viewers, the CMS stub.

Nothing here imports the Processor: the suite speaks to it only through the contract in docs/processor.md.
"""
